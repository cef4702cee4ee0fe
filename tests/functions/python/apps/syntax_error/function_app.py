import azure.functions as func

app = func.FunctionApp(
