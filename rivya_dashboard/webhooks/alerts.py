from django.http import HttpRequest


def failure_banner(request: HttpRequest) -> dict:
    return {}
