"""Per-flow run forms: each flow's parameter holds only the PipelineConfig settings it reads.

Prefect renders a flow's parameter model as its run form. With the whole PipelineConfig there,
the training form had 138 fields, each "(Optional)", and the inference, review and Dask
settings training never reads (issue 24). A form here is a small pydantic model:

- first a few top-level fields, the ones a user changes (dataset, epochs, streams, ...), each
  a setting of a section moved up (`FlowForm.PROMOTED`: form field -> `section.field`);
- then the sections the flow reads (`FlowForm.SECTIONS`), whole or cut to the fields it reads,
  under their PipelineConfig names, without the moved-up fields;
- every field marked required in the form's schema (the deployment fills each with the loaded
  config's value, so none shows "(Optional)"); a null branch is titled "not set".

`form.pipeline_config()` gives the full PipelineConfig the core code takes: the form's values
over the defaults for the sections the flow does not read. A form is built from a loaded
config (`TrainingForm.from_config(cfg)`, what `modalops deploy` stores) and a flow called
with a PipelineConfig (`modalops run`, the tests) takes that config as it is.
"""

from __future__ import annotations

import copy
from typing import Any, ClassVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    create_model,
    model_validator,
)

from modalops.config.base import Section
from modalops.config.loading import format_validation_error
from modalops.config.pipeline import PipelineConfig

__all__ = ["BatchInferenceForm", "FeedbackForm", "FlowForm", "TrainingForm", "form_for"]


def _schema_for_people(schema: dict[str, Any]) -> None:
    """Every field required (no "(Optional)" label); a null branch titled "not set"."""
    props = schema.get("properties", {})
    schema["required"] = list(props)
    for prop in props.values():
        for branch in prop.get("anyOf", []):
            if branch.get("type") == "null":
                branch["title"] = "not set"


class FormSection(Section):
    """A section of a run form: the section's fields, plain (its checks run on the rebuild)."""

    model_config = ConfigDict(json_schema_extra=_schema_for_people)


def _form_model(
    form: str,
    model: type[BaseModel],
    keep: tuple[str, ...] | None = None,
    drop: frozenset | set = frozenset(),
) -> type[FormSection]:
    """A plain copy of `model` for a form: the fields in `keep` (all if None) but not in `drop`,
    with their types, defaults, bounds and descriptions; a field that is itself a model (e.g.
    `registry.gate`) copied the same way, so its fields are marked required too."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if (keep is not None and name not in keep) or name in drop:
            continue
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            annotation = _form_model(form, annotation)
            info = copy.deepcopy(info)
            info.default_factory = annotation
        fields[name] = (annotation, info)
    return create_model(  # type: ignore[call-overload]
        f"{form}{model.__name__}", __base__=FormSection, __doc__=model.__doc__, **fields
    )


def _form_section(
    form: str, section: str, keep: tuple[str, ...] | None, drop: set[str]
) -> tuple[type, Any]:
    """The form's copy of PipelineConfig.`section`: the fields in `keep` (all if None) but not
    in `drop`, with their types, defaults, bounds and descriptions."""
    outer = PipelineConfig.model_fields[section]
    section_model = _form_model(form, outer.annotation, keep, drop)  # type: ignore[arg-type]
    title = section.replace("_", " ").capitalize()
    return section_model, Field(
        default_factory=section_model, title=title, description=outer.description
    )


def _promoted_field(path: str) -> tuple[Any, Any]:
    """The type and field of `section.name`, for a form's top level."""
    section, name = path.split(".")
    model: type[BaseModel] = PipelineConfig.model_fields[section].annotation  # type: ignore[assignment]
    info = copy.deepcopy(model.model_fields[name])
    info.description = f"{info.description} (`{path}`)"
    return info.annotation, info


def _build_form(
    cls_name: str,
    doc: str,
    promoted: dict[str, str],
    sections: dict[str, tuple[str, ...] | None],
) -> type[FlowForm]:
    moved: dict[str, set[str]] = {}
    for path in promoted.values():
        section, name = path.split(".")
        moved.setdefault(section, set()).add(name)
    fields: dict[str, Any] = {
        "name": (str, PipelineConfig.model_fields["name"]),
        **{top: _promoted_field(path) for top, path in promoted.items()},
    }
    for section, keep in sections.items():
        fields[section] = _form_section(cls_name, section, keep, moved.get(section, set()))
    form = create_model(cls_name, __base__=FlowForm, __doc__=doc, **fields)  # type: ignore[call-overload]
    form.PROMOTED = promoted
    form.SECTIONS = sections
    return form


class FlowForm(Section):
    """A flow's run form (see the module docstring); subclasses are made by `_build_form`."""

    model_config = ConfigDict(json_schema_extra=_schema_for_people)

    PROMOTED: ClassVar[dict[str, str]] = {}
    SECTIONS: ClassVar[dict[str, tuple[str, ...] | None]] = {}
    _config: PipelineConfig | None = PrivateAttr(default=None)

    @classmethod
    def form_data(cls, cfg: PipelineConfig) -> dict[str, Any]:
        """The form's values from a loaded config, as JSON (a tracking URI's `${VAR}` password
        stays a reference)."""
        full = cfg.model_dump(mode="json")
        data: dict[str, Any] = {"name": full["name"]}
        for top, path in cls.PROMOTED.items():
            section, name = path.split(".")
            data[top] = full[section][name]
        for section in cls.SECTIONS:
            fields = cls.model_fields[section].annotation.model_fields  # type: ignore[union-attr]
            data[section] = {k: v for k, v in full[section].items() if k in fields}
        return data

    @classmethod
    def from_config(cls, cfg: PipelineConfig) -> FlowForm:
        """The form holding `cfg`'s values for this flow (what a deployment stores)."""
        return cls.model_validate(cls.form_data(cfg))

    @model_validator(mode="wrap")
    @classmethod
    def _accept_pipeline_config(cls, data: Any, handler: Any) -> FlowForm:
        """A PipelineConfig (`modalops run`, tests), or the JSON of one (a flow run recorded
        before the forms), is taken as it is; form values are checked by building the
        PipelineConfig from them, so a bad value fails before the flow runs, with its
        `section.field` named."""
        if isinstance(data, dict) and data and not set(data) & set(cls.PROMOTED):
            data = _validated(data)  # a whole config's JSON: every form has a promoted field
        if isinstance(data, PipelineConfig):
            form = handler(cls.form_data(data))
            form._config = data
            return form
        form = handler(data)
        if form._config is None:
            form._config = form._rebuild()
        return form

    @classmethod
    def config_of(cls, parameter: dict[str, Any]) -> PipelineConfig:
        """The PipelineConfig of a flow run's recorded `cfg` parameter: the form's JSON (a run
        from the UI), or a whole PipelineConfig's (a flow called with one, `modalops run`)."""
        return cls.model_validate(parameter).pipeline_config()

    def pipeline_config(self) -> PipelineConfig:
        """The full config for the core code: this form's values over the defaults."""
        if self._config is None:
            self._config = self._rebuild()
        return self._config

    def _rebuild(self) -> PipelineConfig:
        data = self.model_dump(mode="json", include={"name", *self.SECTIONS})
        for top, path in self.PROMOTED.items():
            section, name = path.split(".")
            data.setdefault(section, {})[name] = getattr(self, top)
        return _validated(data)

    @classmethod
    def field_count(cls) -> int:
        """Inputs in the form (leaf fields, nested sections counted by their fields)."""
        return _count_leaves(cls.model_json_schema())


def _validated(data: dict[str, Any]) -> PipelineConfig:
    """PipelineConfig from JSON; a bad value is a ValueError naming its `section.field`."""
    try:
        return PipelineConfig.model_validate(data)
    except ValidationError as exc:
        raise ValueError(format_validation_error(exc, "the run's parameters")) from None


def _count_leaves(schema: dict[str, Any]) -> int:
    defs = schema.get("$defs", {})

    def leaves(node: dict[str, Any]) -> int:
        if "$ref" in node:
            node = defs[node["$ref"].split("/")[-1]]
        if node.get("type") == "object" and "properties" in node:
            return sum(leaves(p) for p in node["properties"].values())
        return 1

    return leaves(schema)


TrainingForm = _build_form(
    "TrainingForm",
    "Settings of a training run: the few people change first, then each stage's section.",
    promoted={
        "raw_uri": "ingest.raw_uri",
        "streams": "train.streams",
        "max_epochs": "train.max_epochs",
        "baselines": "train.baselines",
    },
    sections={
        "store": None,
        "ingest": None,
        "align": None,
        "validation": None,
        "shard": None,
        "train": None,
        "evaluate": None,
        "registry": None,
        "dask": None,
    },
)

BatchInferenceForm = _build_form(
    "BatchInferenceForm",
    "Settings of a batch inference run: which recordings and model, then each section.",
    promoted={
        "raw_uri": "inference.raw_uri",
        "sessions": "inference.sessions",
        "model_name": "registry.model_name",
        "alias": "inference.alias",
    },
    sections={
        "store": None,
        "ingest": None,
        "align": None,
        "inference": None,
        "review": None,
        "registry": ("tracking_uri", "experiment", "artifact_location"),
        "evaluate": ("hourly_price_usd",),
    },
)

FeedbackForm = _build_form(
    "FeedbackForm",
    "Settings of a feedback run: the model whose reviews to pull, then each section.",
    promoted={"model_name": "registry.model_name"},
    sections={
        "store": None,
        "ingest": ("raw_uri", "spec"),
        "inference": ("raw_uri",),
        "align": ("min_label_overlap",),
        "review": None,
    },
)


def form_for(annotation: Any) -> type[FlowForm] | None:
    """The form class a flow parameter is typed with, else None."""
    if isinstance(annotation, type) and issubclass(annotation, FlowForm):
        return annotation
    if isinstance(annotation, str):
        return {f.__name__: f for f in (TrainingForm, BatchInferenceForm, FeedbackForm)}.get(
            annotation
        )
    return None
