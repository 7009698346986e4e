"""The one error a compilation job reports as its FailureReason."""


class CompilationError(Exception):
    """A problem with the model or the request (bad model, shape, framework, target)."""
