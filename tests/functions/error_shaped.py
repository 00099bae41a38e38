"""Test handler: succeeds with a result that looks like the runtime's failure payload."""


def handler(event, context):
    return {"errorMessage": "not an error: a field of the result", "errorType": "Note", "value": 1}
