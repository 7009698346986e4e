"""The trigger forms of the five DAGs (orchard.params): defaults that submit, strict patterns, plain words.

* Every DAG's defaults pass the check Airflow's trigger endpoint applies: ``POST /api/v2/dags/{id}/dagRuns``
  (airflow/api_fastapi/core_api/routes/public/dag_run.py ``trigger_dag_run``) calls the serialized DAG's
  ``create_dagrun``, which runs ``self.params.deep_merge(conf)`` then ``.validate()``; the test runs exactly
  that on each DAG after a serialization round trip, with no conf and with the form's full conf.
* And the form's own rule (Airflow 3.3 UI, FlexibleForm: a param is required when its schema has a
  ``type`` that does not include ``"null"``; a required field whose value is null, undefined or "" blocks
  the Trigger button): no required param defaults to None or "".
* The patterns refuse what AWS or common sense refuses (``s3:///x``, surrounding spaces, blank categories)
  on every DAG param of that kind, and ``orchard.params.check`` says so in plain words naming the param.
"""

from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest
from airflow.sdk import Asset, Param
from airflow.sdk.definitions.param import ParamsDict
from airflow.sdk.exceptions import ParamValidationError
from airflow.serialization.definitions.dag import SerializedDAG
from airflow.serialization.serialized_objects import DagSerialization

from orchard import params as form
from orchard.errors import InputError
from orchard.task_defaults import DEFAULT_ARGS, OWNER
from tests.dags import integrity

REPO_ROOT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted(p for p in (REPO_ROOT / "dags").glob("*.py") if p.name != "__init__.py")
DAG_IDS = [p.stem for p in DAG_FILES]

# issue 16: the "optional" params whose empty-string default blocked the Trigger button.
OPTIONAL = {
    "edge_deployment": ["camera_images_uri"],
    "pose_training": ["project_uri", "backbone_weights", "train_crop"],
    "auto_labeling": ["image_uri", "existing_endpoint_name", "model_data_uri"],
    "aerial_pretraining": ["prepared_dataset_uri"],
    "fruit_features": ["pca_k"],
}


@pytest.fixture(scope="module")
def dags() -> dict:
    loaded = {}
    for path in DAG_FILES:
        result = integrity.load(path)
        assert not result.import_errors, result.import_errors
        for dag in result.dags:
            loaded[dag.dag_id] = dag
    return loaded


def serialized(dag) -> SerializedDAG:
    """The DAG as the API server holds it: serialized by the DAG processor, read back from the database."""
    return DagSerialization.from_dict(json.loads(json.dumps(DagSerialization.to_dict(dag))))


def is_required(schema: dict) -> bool:
    """The UI's rule (FlexibleForm isRequired): a type, and not one that includes "null"."""
    kind = schema.get("type")
    return bool(kind) and not (isinstance(kind, list) and "null" in kind)


# --- the form submits with its defaults ---------------------------------------------------------------


def test_the_trigger_endpoint_still_validates_params_with_deep_merge_and_validate():
    """The check the next test copies is the one Airflow runs: if Airflow changes it, this fails first."""
    source = inspect.getsource(SerializedDAG.create_dagrun)
    assert "self.params.deep_merge(conf)" in source and ".validate()" in source


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_defaults_pass_the_trigger_endpoints_validation(dags, dag_id):
    dag = serialized(dags[dag_id])
    form_conf = {name: dag.params[name] for name in dag.params}  # what the form sends, untouched
    for conf in (None, form_conf):
        merged = dag.params.deep_merge(conf)
        merged.validate()  # raises ParamValidationError, as the endpoint's 400 does
    assert form_conf, f"{dag_id} has no params"


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_no_required_field_is_empty_by_default(dags, dag_id):
    blocked = [
        f"{name}={param.value!r}"
        for name, param in dags[dag_id].params.items()
        if is_required(param.schema) and param.value in (None, "")
    ]
    assert not blocked, f"{dag_id}: required fields empty by default block Trigger: {blocked}"


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_optional_params_are_nullable_and_default_to_none(dags, dag_id):
    for name in OPTIONAL[dag_id]:
        param = dags[dag_id].params.get_param(name)
        kinds = param.schema["type"]
        assert isinstance(kinds, list) and "null" in kinds, f"{dag_id}.{name}: {kinds}"
        assert "Leave empty:" in param.description, f"{dag_id}.{name} does not say what empty means"
        assert Param(None, schema=param.schema).resolve() is None
    dag = serialized(dags[dag_id])
    dag.params.deep_merge({name: None for name in OPTIONAL[dag_id]}).validate()
    no_empty_strings = [n for n in dag.params if dag.params[n] == ""]
    assert not no_empty_strings, f"{dag_id}: empty-string defaults left: {no_empty_strings}"


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_every_param_says_its_format_and_long_forms_have_sections(dags, dag_id):
    params = dags[dag_id].params
    undocumented = [name for name in params if not (params.get_param(name).description or "").strip()]
    assert not undocumented, f"{dag_id}: params without a description: {undocumented}"
    sections = {params.get_param(name).schema.get("section") for name in params}
    if len(params) > 8:
        assert len(sections - {None}) >= 2, f"{dag_id}: {len(params)} params in one section"


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_every_s3_param_uses_the_shared_patterns(dags, dag_id):
    """One rule for S3 URIs: no DAG keeps a regex of its own; every *_prefix param is a folder."""
    for name, param in dags[dag_id].params.items():
        schema, default = param.schema, param.value
        pattern = schema.get("pattern", "")
        if (isinstance(default, str) and default.startswith("s3://")) or "s3://" in pattern:
            assert form.is_s3_pattern(pattern), f"{dag_id}.{name} has its own S3 pattern {pattern}"
        if name.endswith("_prefix"):
            assert pattern == form.S3_FOLDER, f"{dag_id}.{name} is a prefix but not an S3 folder"


# --- strict patterns ----------------------------------------------------------------------------------

BAD_S3 = [
    "s3:///x",  # no bucket
    "s3:///x/",
    " s3://orchard-data/x/",  # spaces around
    "s3://orchard-data/x/ ",
    "s3://orchard-data/x/\n",
    "s3://Orchard-Data/x/",  # S3 naming rules
    "s3://ab/x/",
    "s3://a..b/x/",
    "s3://192.168.5.4/x/",
    "s3://xn--abc/x/",
    "s3://orchard_data/x/",
    "s3://orchard-data//x/",  # an empty path segment: a join mistake
    "S3://orchard-data/x/",
    "https://orchard-data.s3.amazonaws.com/x/",
]


def test_bad_s3_uris_are_refused_by_every_s3_param(dags):
    params = [
        (d, n)
        for d, dag in dags.items()
        for n in dag.params
        if form.is_s3_pattern(dag.params.get_param(n).schema.get("pattern", ""))
    ]
    assert len(params) == 11, params  # every S3 param of the five DAGs
    for dag_id, name in params:
        schema = dags[dag_id].params.get_param(name).schema
        for bad in BAD_S3:
            with pytest.raises(ParamValidationError, match="does not match"):
                Param(bad, schema=schema).resolve()


@pytest.mark.parametrize(
    "good,object_ok,folder_ok",
    [
        ("s3://orchard-data/frames/cam1/", False, True),
        ("s3://orchard-data/", False, True),
        ("s3://orchard.data-1/a b/c.zip", True, False),
        ("s3://my-ap-abc123-s3alias/k.tar.gz", True, False),  # an access point alias is used as a bucket
    ],
)
def test_good_s3_uris_pass(good, object_ok, folder_ok):
    import re

    assert bool(re.search(form.S3_OBJECT, good)) is object_ok
    assert bool(re.search(form.S3_FOLDER, good)) is folder_ok


def test_a_prefix_without_slash_is_refused_because_it_reads_sibling_folders(dags):
    schema = dags["auto_labeling"].params.get_param("frames_prefix").schema
    with pytest.raises(ParamValidationError):
        Param("s3://orchard-data/frames/cam1", schema=schema).resolve()
    assert Param("s3://orchard-data/frames/cam1/", schema=schema).resolve()


@pytest.mark.parametrize("bad", [[], [""], ["  "], [" car"], ["car "], ["car", "car"], ["car\n"]])
def test_blank_or_padded_label_categories_are_refused(dags, bad):
    schema = dags["auto_labeling"].params.get_param("label_categories").schema
    with pytest.raises(ParamValidationError):
        Param(bad, schema=schema).resolve()


@pytest.mark.parametrize(
    "bad",
    [
        " arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/t",
        "arn:aws:sagemaker:us-east-1:123456789012:workteam/private-crowd/t ",
        "arn:aws:sagemaker:us-east-1:12345:workteam/private-crowd/t",
        "arn:aws:iam::123456789012:role/x",
        "arn:aws:sagemaker:us-east-1:123456789012:workteam/",
    ],
)
def test_bad_workteam_arns_are_refused(dags, bad):
    schema = dags["auto_labeling"].params.get_param("workteam_arn").schema
    with pytest.raises(ParamValidationError):
        Param(bad, schema=schema).resolve()


@pytest.mark.parametrize(
    "dag_id,name,bad",
    [
        ("pose_training", "train_crop", " 96x80"),
        ("pose_training", "backbone_weights", "none "),
        ("auto_labeling", "existing_endpoint_name", "my endpoint"),
        ("auto_labeling", "image_uri", "  "),
        ("edge_deployment", "device_names", ["cam 1"]),
        ("edge_deployment", "input_shape", " {}"),
        ("fruit_features", "core_node_counts", [2, 2]),
        ("aerial_pretraining", "model_package_group", "aerial dino"),
    ],
)
def test_other_padded_or_malformed_values_are_refused(dags, dag_id, name, bad):
    with pytest.raises(ParamValidationError):
        Param(bad, schema=dags[dag_id].params.get_param(name).schema).resolve()


# --- the first task's re-check ------------------------------------------------------------------------


def failure(params: dict, dag, rules=()) -> str:
    with pytest.raises(InputError) as caught:
        form.check(params, rules, dag=dag)
    return str(caught.value)


def test_check_passes_the_defaults_of_every_dag(dags):
    for dag in dags.values():
        assert form.check(dict(dag.params), dag=dag)


@pytest.mark.parametrize(
    "value,words",
    [
        ("s3:///frames/", "the bucket is empty"),
        (" s3://orchard-data/frames/", "spaces or a line break"),
        ("s3://orchard-data/frames/cam1", "a folder must end in '/'"),
        ("s3://Orchard_Data/frames/", "breaks S3's naming rules"),
    ],
)
def test_check_names_the_param_and_the_fix_in_plain_words(dags, value, words):
    dag = dags["auto_labeling"]
    message = failure({**dict(dag.params), "frames_prefix": value}, dag)
    assert f"frames_prefix={value!r}" in message and words in message, message
    assert "e.g. s3://" in message  # an example of a good one
    assert "Failed validating" not in message  # no raw JSON-schema dump


def test_check_lists_every_bad_param_at_once(dags):
    dag = dags["edge_deployment"]
    message = failure(
        {
            **dict(dag.params),
            "calibration_uri": "s3:///c/",
            "capture_batch_size": 0,
            "target_device": "toaster",
        },
        dag,
    )
    assert "calibration_uri" in message and "capture_batch_size=0 is out of range" in message
    assert "target_device='toaster' is not one of the choices" in message


def test_check_finds_what_the_schema_cannot_say(dags):
    dag = dags["auto_labeling"]
    message = failure({**dict(dag.params), "label_categories": ["Car", "car"]}, dag)
    assert "label_categories lists 'Car' and 'car'" in message
    long_key = "k" * 600 + "é" * 300  # 1,200 bytes of UTF-8 in 900 characters
    message = failure({**dict(dag.params), "frames_prefix": f"s3://orchard-data/{long_key}/"}, dag)
    assert "at most 1024 bytes" in message


@pytest.mark.parametrize(
    "dag_id,conf,words",
    [
        (
            "auto_labeling",
            {"model_data_uri": None, "existing_endpoint_name": None},
            "none of model_data_uri, existing_endpoint_name is given",
        ),
        (
            "edge_deployment",
            {"simulated_devices": True, "camera_images_uri": None},
            "camera_images_uri is empty but simulated_devices is on",
        ),
    ],
)
def test_check_applies_the_dags_rules(dags, dag_id, conf, words):
    import runpy

    rules = runpy.run_path(str(REPO_ROOT / "dags" / f"{dag_id}.py"))["RULES"]
    dag = dags[dag_id]
    assert words in failure({**dict(dag.params), **conf}, dag, rules)


def test_rules_across_params():
    requires = form.requires("camera_images_uri", when="simulated_devices", because="the cameras read it")
    one_of = form.one_of("model_data_uri", "existing_endpoint_name")
    assert requires({"simulated_devices": False, "camera_images_uri": None}) is None
    assert "camera_images_uri is empty but simulated_devices is on" in requires(
        {"simulated_devices": True, "camera_images_uri": None}
    )
    assert one_of({"model_data_uri": "s3://b/m.tar.gz", "existing_endpoint_name": None}) is None
    assert "give one of them" in one_of({"model_data_uri": None, "existing_endpoint_name": ""})
    with pytest.raises(InputError, match="simulated_devices is on"):
        form.check({"simulated_devices": True, "camera_images_uri": None}, [requires])


# --- make up: the form's defaults are the demo's --------------------------------------------------------


def test_local_defaults_replace_the_forms_defaults(tmp_path):
    params = {
        "frames_prefix": form.s3_folder("s3://orchard-data/a/", description="d"),
        "simulated_devices": form.flag(False, description="d"),
    }
    path = tmp_path / "defaults.json"
    path.write_text(json.dumps({"demo": {"simulated_devices": True, "frames_prefix": "s3://x-demo/f/"}}))
    env = {form.DEFAULTS_ENV: str(path)}
    got = ParamsDict(form.with_defaults("demo", params, env))
    assert got["simulated_devices"] is True and got["frames_prefix"] == "s3://x-demo/f/"
    assert got.get_param("frames_prefix").schema == params["frames_prefix"].schema
    assert form.with_defaults("other", params, env) is params  # another DAG: untouched
    assert form.with_defaults("demo", params, {}) is params  # on AWS: untouched
    assert form.with_defaults("demo", params, {form.DEFAULTS_ENV: str(tmp_path / "none.json")}) is params


@pytest.mark.parametrize(
    "content,words",
    [
        ({"demo": {"nope": 1}}, "demo has no param nope"),
        ({"demo": {"frames_prefix": "s3:///x/"}}, "frames_prefix='s3:///x/'"),
        ({"demo": []}, "expected {dag_id: {param: value}}"),
    ],
)
def test_bad_local_defaults_fail_the_parse_naming_the_param(tmp_path, content, words):
    params = {"frames_prefix": form.s3_folder("s3://orchard-data/a/", description="d")}
    path = tmp_path / "defaults.json"
    path.write_text(json.dumps(content))
    with pytest.raises(ValueError, match=None) as caught:
        form.with_defaults("demo", params, {form.DEFAULTS_ENV: str(path)})
    assert words in str(caught.value) and form.DEFAULTS_ENV in str(caught.value)


# --- DAG headers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_one_owner_a_description_and_one_tag_scheme(dags, dag_id):
    dag = dags[dag_id]
    assert dag.description and len(dag.description) <= 110
    assert {task.owner for task in dag.tasks} == {OWNER}
    assert dag.default_args["retries"] == DEFAULT_ARGS["retries"]
    tags = sorted(dag.tags)
    assert "orchard" in tags and f"pipeline:{dag_id}" in tags
    others = [t for t in tags if t not in ("orchard", f"pipeline:{dag_id}")]
    assert others and all(t.startswith("aws:") for t in others), tags


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_assets_are_named_dag_id_dot_what(dags, dag_id):
    dag = dags[dag_id]

    def flat(node):
        if isinstance(node, Asset):
            return [node]
        return [a for child in getattr(node, "objects", None) or [] for a in flat(child)]

    assets = [o for task in dag.tasks for o in task.outlets] + flat(dag.schedule)
    names = [a.name for a in assets]
    assert names, f"{dag_id} has no Asset"
    assert all(n.startswith(f"{dag_id}.") for n in names), names


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_under_make_up_the_forms_defaults_are_the_demos(aws, dag_id, tmp_path, monkeypatch):
    """`make up` uploads each DAG's demo data and writes its conf where the DAGs read their defaults: the
    form then submits the demo run as it stands (Trigger alone), and the endpoint's check passes it."""
    from local_aws import stack

    demo = stack.Stack(sandbox_port=int(aws.url.rsplit(":", 1)[1]), home=tmp_path)
    confs = demo.seed([dag_id])
    path = stack.write_param_defaults(tmp_path / "airflow.db", confs)
    assert path == stack.param_defaults_path(tmp_path / "airflow.db")
    env = stack.airflow_env(tmp_path, REPO_ROOT / "dags", sandbox_url=aws.url)
    assert env[form.DEFAULTS_ENV] == str(path)
    monkeypatch.setenv(form.DEFAULTS_ENV, str(path))
    [dag] = integrity.load.__wrapped__(REPO_ROOT / "dags" / f"{dag_id}.py").dags  # anew: load() caches
    conf = confs[dag_id]
    assert conf, f"{dag_id} has no demo conf"
    assert {name: dag.params[name] for name in conf} == conf
    serialized(dag).params.deep_merge(None).validate()
    assert form.check(dict(dag.params), dag=dag)


def test_label_categories_keep_ground_truths_bounding_box_limit(dags):
    """CreateLabelingJob: "Box bounding labeling jobs (all): 10 labels"."""
    schema = dags["auto_labeling"].params.get_param("label_categories").schema
    assert Param([f"c{i}" for i in range(10)], schema=schema).resolve()
    with pytest.raises(ParamValidationError):
        Param([f"c{i}" for i in range(11)], schema=schema).resolve()


def test_a_local_defaults_file_that_is_not_json_fails_naming_it(tmp_path):
    path = tmp_path / "defaults.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="not a readable JSON file"):
        form.default_overrides("demo", {form.DEFAULTS_ENV: str(path)})


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_the_first_task_that_reads_params_rechecks_them(dags, dag_id):
    first = {
        "pose_training": "find_projects",
        "auto_labeling": "validate_inputs",
        "aerial_pretraining": "validate_inputs",
        "fruit_features": "check_inputs",
        "edge_deployment": "validate_model",
    }[dag_id]
    task = dags[dag_id].get_task(first)
    assert "form.check(params" in inspect.getsource(task.python_callable)
    waiting = [t.task_id for t in dags[dag_id].tasks if first in t.upstream_task_ids]
    assert waiting, f"{dag_id}: no task waits for {first}"  # the run goes on only once it passed


# --- task code reads an empty optional param (None) as "not given" ---------------------------------------


def test_pose_sends_no_environment_for_empty_training_settings():
    from orchard.pose_training.upload import container_overrides

    training = {
        "epochs": 2,
        "batch_size": 4,
        "net_type": "resnet_50",
        "backbone_weights": None,
        "train_crop": None,
    }
    names = [e["name"] for e in container_overrides("b", "k.zip", "s3://o/x/", training)["environment"]]
    assert "DLC_BACKBONE_WEIGHTS" not in names and "DLC_TRAIN_CROP" not in names and "DLC_EPOCHS" in names


def test_aerial_empty_prepared_dataset_uri_is_the_runs_own_prefix():
    from orchard.aerial_pretraining.plan import dataset_uri
    from orchard.settings import Settings

    uri = dataset_uri({"prepared_dataset_uri": None}, Settings(), "manual__2026-12-06T00:00:00+00:00")
    assert uri.startswith("s3://orchard-artifacts/") and uri.endswith("/dataset/")
    assert dataset_uri({"prepared_dataset_uri": "s3://b/p/"}, Settings(), "r") == "s3://b/p/"


def test_auto_labelings_endpoint_template_renders_none_as_no_endpoint(dags):
    dag = dags["auto_labeling"]
    task = dag.get_task("deploy_endpoint")
    for value, rendered in ((None, ""), ("team-detector", "team-detector")):
        out = task.render_template(
            task.existing_endpoint_name, {"params": {"existing_endpoint_name": value}}, dag.get_template_env()
        )
        assert out == rendered


# --- parse cost: Airflow's per-operator deep copies of the params share the schema (issue 17.3) ----------


def test_a_params_deep_copy_shares_its_schema_and_copies_its_value():
    import copy

    param = form.label_categories(["car", "person"], description="Categories.", max_items=10)
    copied = copy.deepcopy(param)
    again = copy.deepcopy(copied)
    assert type(copied) is Param and type(again) is Param  # Airflow serializes exactly Param as a Param
    assert copied.schema is param.schema and again.schema is param.schema
    assert copied.description == param.description
    copied.value.append("bicycle")  # a task's copy changing its value leaves the DAG's param alone
    assert param.value == ["car", "person"] and again.value == ["car", "person"]
    assert copied.resolve() == ["car", "person", "bicycle"]


def test_every_tasks_params_share_the_dags_schemas_and_serialize_as_before(dags):
    dag = dags["auto_labeling"]
    for task in dag.tasks:
        for key in dag.params:
            assert task.params.get_param(key).schema is dag.params.get_param(key).schema, (task.task_id, key)
    plain = ParamsDict(
        {k: Param(p.value, description=p.description, schema=p.schema) for k, p in dag.params.items()}
    )
    assert DagSerialization._serialize_params_dict(dag.params) == DagSerialization._serialize_params_dict(
        plain
    )
    assert serialized(dag).params.validate() == dag.params.validate()


# --- parse cost: a param's resolve checks its value, not its schema again (issue 17.3) ------------------

_PROBES = (
    None,
    "",
    " x",
    "s3://orchard-data/a/",
    "s3://orchard-data/a.zip",
    0,
    1,
    10**9,
    -1,
    1.5,
    True,
    ["a"],
)


def test_every_params_schema_is_a_valid_json_schema(dags):
    """What resolve no longer re-checks at each parse: every DAG param's schema against the meta-schema."""
    from jsonschema import validators

    for dag_id, dag in dags.items():
        for key, param in dag.params.items():
            validators.validator_for(param.schema).check_schema(param.schema)  # raises SchemaError


@pytest.mark.parametrize("dag_id", DAG_IDS)
def test_resolve_gives_what_airflows_resolve_gives(dags, dag_id):
    """Same value, same error message, for the default, a probe of every JSON type and no value at all."""
    import copy

    for key, param in dags[dag_id].params.items():
        plain = Param(param.value, description=param.description, schema=param.schema)
        assert param.resolve.func is form._resolved_against_checked_schema, key
        for value in (param.value, *_PROBES):
            assert _outcome(param, value) == _outcome(plain, value), (key, value)
        assert copy.deepcopy(param).resolve(None, True) == copy.deepcopy(plain).resolve(None, True)
        empty = Param(description="no default", schema=param.schema)
        form._cheap_to_copy(empty)
        with pytest.raises(ParamValidationError, match="no default value"):
            empty.resolve()
        assert empty.resolve(suppress_exception=True) is None


def _outcome(param: Param, value) -> tuple:
    import copy

    param = copy.deepcopy(param)  # resolve keeps a valid value: leave the DAG's param as it was
    try:
        return ("ok", param.resolve(value=value))
    except ParamValidationError as error:
        return ("error", str(error))


def test_dags_serialize_the_same_without_orchards_param_shortcuts(monkeypatch):
    """The serialized DAGs (what the processor stores and the scheduler and UI read) are the same with
    plain Params, whose copies and resolves are all Airflow's own."""
    shortcut = {p.stem: DagSerialization.to_dict(_only_dag(p)) for p in DAG_FILES}
    monkeypatch.setattr(form, "_cheap_to_copy", lambda param: param)
    plain = {p.stem: DagSerialization.to_dict(_only_dag(p)) for p in DAG_FILES}
    assert not any("resolve" in vars(p) for p in _only_dag(DAG_FILES[0]).params.values())  # switched off
    for dag_id in DAG_IDS:
        assert json.dumps(shortcut[dag_id], sort_keys=True) == json.dumps(plain[dag_id], sort_keys=True)


def _only_dag(path: Path):
    result = integrity.load.__wrapped__(path)  # parsed again, not integrity.load's cached DAG
    assert not result.import_errors, result.import_errors
    (dag,) = result.dags
    return dag
