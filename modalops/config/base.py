"""Base model shared by every config section: unknown keys are refused, values are checked."""

from pydantic import BaseModel, ConfigDict


class Section(BaseModel):
    """A config section. `extra="forbid"` turns a typo in YAML into an error naming the key."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)
