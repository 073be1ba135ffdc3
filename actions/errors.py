"""The error hierarchy.

Two families, kept apart on purpose (as smolagents does):

* ``ModelError`` — the *policy* did something wrong (unparseable text, a point off screen, typing
  with nothing focused). The loop records it and feeds its message back to the policy as the next
  observation; the run goes on.
* ``EnvironmentError_`` / ``GalagoBug`` — the browser crashed, the page is gone, or our own code
  failed. The loop ends the run with a clear error and leaves an intact trajectory.
"""
from __future__ import annotations


class GalagoError(Exception):
    """Base class of every error galago raises on purpose."""


class ModelError(GalagoError):
    """Caused by the policy's output; fed back to the policy as an observation."""


class ActionParseError(ModelError, ValueError):
    """Model text that is not a valid action. The message is written to be shown to the model."""


class ActionExecutionError(ModelError):
    """A well-formed action that could not be performed here (e.g. a point outside the viewport)."""


class EnvironmentFailure(GalagoError):
    """The environment failed (browser crashed, page closed, navigation refused by the host)."""


class BrowserNotFound(EnvironmentFailure):
    """No Chromium binary could be found."""


class ConfigError(GalagoError, ValueError):
    """Bad user input: a task file, a policy spec, a CLI option. Exit code 2 in the CLI."""
