import os

import azure.functions as func


def required_setting(name):
    return os.environ[name]


app = func.FunctionApp()
database = required_setting("TRIBUTARY_TEST_UNSET_SETTING")
