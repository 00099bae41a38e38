"""FunctionGraph handler: divide two numbers; dividing by zero makes the function fail."""

from typing import Any


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    logger = context.getLogger()
    numerator, denominator = event["numerator"], event["denominator"]
    logger.info(f"dividing {numerator} by {denominator}")
    quotient = numerator / denominator
    logger.info(f"quotient is {quotient}")
    return {"quotient": quotient}
