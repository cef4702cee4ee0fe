import azure.functions as func
import tributary_test_dependency_that_is_not_installed

app = func.FunctionApp()
