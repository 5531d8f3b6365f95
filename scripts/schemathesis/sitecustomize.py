"""Installed into schemathesis's virtual environment by scripts/env.sh (ensure_schemathesis).

CPython 3.11 before 3.11.9 raises SystemError("AST constructor recursion depth mismatch") from
ast.parse when it is called deep in the stack (python/cpython#106905). Hypothesis parses a
lambda's source only to describe the lambda in its reports, and catches SyntaxError alone, so
the bug ends a whole operation's run with a "Runtime Error". Here a description that cannot be
parsed becomes Hypothesis's own "unknown" description; nothing generated or checked changes.
"""

try:
    import inspect

    from hypothesis.internal import lambda_sources

    _describe = lambda_sources._lambda_description

    def _lambda_description(f, *args, **kwargs):
        try:
            return _describe(f, *args, **kwargs)
        except SystemError:
            target = getattr(f, "__wrapped_target", f)
            parameters = str(inspect.signature(target))[1:-1]
            return f"lambda {parameters}: <unknown>" if parameters else "lambda: <unknown>"

    lambda_sources._lambda_description = _lambda_description
except ImportError:
    pass
