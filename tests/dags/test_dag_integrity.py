"""DAG integrity: every file in dags/ keeps the rules of docs/architecture.md ("Conventions for DAGs", "Tests").

The rules live in integrity.py. The first part applies them to each file in dags/; the rest proves each
rule on tests/dags/samples/ (good_dag.py breaks none, each bad_*.py exactly its own) and on operators
built in memory for the name fields the samples do not show.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from airflow.providers.amazon.aws.operators.batch import BatchOperator
from airflow.providers.amazon.aws.operators.emr import EmrAddStepsOperator, EmrCreateJobFlowOperator
from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerEndpointOperator,
    SageMakerProcessingOperator,
    SageMakerTrainingOperator,
    SageMakerTransformOperator,
)
from airflow.sdk import DAG, task

from tests.dags import integrity, parse_budget

REPO_ROOT = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO_ROOT / "dags"
SAMPLES = Path(__file__).resolve().parent / "samples"
DAG_FILES = sorted(p for p in DAGS_FOLDER.glob("*.py") if p.name != "__init__.py")
PARSE_RUNS = 5  # best of 5 fresh processes: a busy 2-core machine only adds time, never removes it


def dag_file_params():
    if not DAG_FILES:
        skip = pytest.mark.skip(reason="no DAG files yet in dags/")
        return [pytest.param(None, id="no-dag-files", marks=skip)]
    return [pytest.param(path, id=path.name) for path in DAG_FILES]


@pytest.fixture(scope="module")
def dag_file_timings() -> dict[Path, parse_budget.ParseTiming]:
    return parse_budget.measure(DAG_FILES, runs=PARSE_RUNS)  # all files at once: the slow part


def dags_of(path: Path):
    loaded = integrity.load(path)
    if not loaded.dags:
        pytest.skip(f"{path.name} has no DAG to check: see test_imports_without_error")
    return loaded.dags


def assert_no_problems(problems: list[str]) -> None:
    if problems:  # the problems are the report: no assertion rewriting around them
        pytest.fail("\n\n".join(problems), pytrace=False)


# --- dags/ -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", dag_file_params())
def test_imports_without_error(path):
    assert_no_problems(integrity.import_problems(integrity.load(path)))


@pytest.mark.serial
@pytest.mark.parametrize("path", dag_file_params())
def test_parse_within_budget(path, dag_file_timings):
    timing = dag_file_timings[path]
    if timing.error:
        pytest.skip(f"{path.name} does not load ({timing.error}): see test_imports_without_error")
    assert_no_problems(integrity.parse_budget_problems(timing))


@pytest.mark.parametrize("path", dag_file_params())
def test_every_wait_is_deferrable(path):
    assert_no_problems([p for dag in dags_of(path) for p in integrity.deferrable_problems(dag)])


@pytest.mark.parametrize("path", dag_file_params())
def test_has_doc_md_tags_owner_and_typed_params(path):
    assert_no_problems([p for dag in dags_of(path) for p in integrity.metadata_problems(dag)])


@pytest.mark.parametrize("path", dag_file_params())
def test_aws_facing_tasks_retry_with_backoff(path):
    assert_no_problems([p for dag in dags_of(path) for p in integrity.retry_problems(dag)])


@pytest.mark.parametrize("path", dag_file_params())
def test_job_names_come_from_orchard_naming(path):
    assert_no_problems([p for dag in dags_of(path) for p in integrity.naming_problems(dag)])


# --- the rules, proven on samples --------------------------------------------------------------------

# Each bad sample: the one rule it breaks, and a phrase its single problem must contain.
BAD_SAMPLES = {
    "bad_import_error.py": ("imports", "Invalid arguments were passed to BatchOperator"),
    "bad_slow_imports.py": ("parse_budget", "beyond airflow.sdk (budget 300 ms)"),
    "bad_slow_top_level.py": ("parse_budget", "to parse once its imports are loaded (budget 50 ms)"),
    "bad_batch_not_deferrable.py": ("deferrable", "'train' (BatchOperator) would hold a worker slot"),
    "bad_sensor_cannot_defer.py": ("deferrable", "'wait_for_input' (BashSensor) is a sensor that cannot"),
    "bad_missing_doc_md.py": ("metadata", "has no doc_md"),
    "bad_missing_tags.py": ("metadata", "has no tags"),
    "bad_default_owner.py": ("metadata", "is owned by the default 'airflow'"),
    "bad_missing_params.py": ("metadata", "has no params"),
    "bad_untyped_param.py": ("metadata", "param 'queue' has no JSON-schema type"),
    "bad_aws_task_without_retries.py": ("retries", "'train' (BatchOperator) talks to AWS with retries=0"),
    "bad_aws_task_without_backoff.py": ("retries", "with no retry_delay or retry_exponential_backoff"),
    "bad_literal_job_name.py": ("naming", "'train' (BatchOperator) job_name is the literal 'train-pose'"),
    "bad_naming_macro_undefined.py": ("naming", "templates names with aws_name() but does not define it"),
}
GOOD_SAMPLE = SAMPLES / "good_dag.py"


@pytest.fixture(scope="module")
def sample_timings() -> dict[Path, parse_budget.ParseTiming]:
    return parse_budget.measure([GOOD_SAMPLE, *(SAMPLES / name for name in BAD_SAMPLES)], runs=PARSE_RUNS)


def broken_rules(path: Path, timing: parse_budget.ParseTiming) -> dict[str, list[str]]:
    return {rule: found for rule, found in integrity.problems_by_rule(path, timing).items() if found}


def test_every_bad_sample_has_an_expectation():
    assert sorted(p.name for p in SAMPLES.glob("bad_*.py")) == sorted(BAD_SAMPLES)


@pytest.mark.serial
def test_good_sample_breaks_no_rule(sample_timings):
    assert broken_rules(GOOD_SAMPLE, sample_timings[GOOD_SAMPLE]) == {}
    assert [dag.dag_id for dag in integrity.load(GOOD_SAMPLE).dags] == ["good_sample"]


@pytest.mark.serial
@pytest.mark.parametrize(("name", "rule", "phrase"), [(name, *rule) for name, rule in BAD_SAMPLES.items()])
def test_bad_sample_breaks_exactly_its_rule(name, rule, phrase, sample_timings):
    broken = broken_rules(SAMPLES / name, sample_timings[SAMPLES / name])
    assert list(broken) == [rule], broken
    assert len(broken[rule]) == 1, broken[rule]
    assert phrase in broken[rule][0]


@pytest.mark.serial
def test_parse_budget_tells_imports_from_top_level_work(sample_timings):
    slow_imports = sample_timings[SAMPLES / "bad_slow_imports.py"]
    slow_top_level = sample_timings[SAMPLES / "bad_slow_top_level.py"]
    assert slow_imports.other_import_ms >= 500 > slow_imports.parse_ms  # the 0.5 s sleep is an import
    assert slow_top_level.parse_ms >= 200 > slow_top_level.other_import_ms  # the 0.2 s sleep is the file's
    assert sample_timings[GOOD_SAMPLE].airflow_import_ms > 0  # BatchOperator's module, beyond airflow.sdk


@pytest.mark.serial
def test_a_file_that_does_not_load_keeps_its_error(sample_timings):
    error = sample_timings[SAMPLES / "bad_import_error.py"].error
    assert "Invalid arguments were passed to BatchOperator" in error


# --- name fields of each operator family, in memory --------------------------------------------------

TEMPLATED = "{{ aws_name('kind', dag.dag_id, run_id) }}"

# case: (operator factory, labels of the literal names it must report)
NAME_CASES = {
    "sagemaker-training": (
        lambda: SageMakerTrainingOperator(task_id="t", config={"TrainingJobName": "literal"}),
        ["config['TrainingJobName']"],
    ),
    "sagemaker-processing-templated": (
        lambda: SageMakerProcessingOperator(task_id="t", config={"ProcessingJobName": TEMPLATED}),
        [],
    ),
    "sagemaker-endpoint-nested": (
        lambda: SageMakerEndpointOperator(
            task_id="t",
            config={
                "Model": {"ModelName": TEMPLATED},
                "EndpointConfig": {
                    "EndpointConfigName": "literal",
                    "ProductionVariants": [{"VariantName": "all", "ModelName": "literal"}],
                },
                "Endpoint": {"EndpointName": TEMPLATED, "EndpointConfigName": TEMPLATED},
            },
        ),
        [
            "config['EndpointConfig']['EndpointConfigName']",
            "config['EndpointConfig']['ProductionVariants'][0]['ModelName']",
        ],
    ),
    "sagemaker-transform-nested": (
        lambda: SageMakerTransformOperator(
            task_id="t",
            config={
                "Model": {"ModelName": TEMPLATED},
                "Transform": {"TransformJobName": "literal", "ModelName": TEMPLATED},
            },
        ),
        ["config['Transform']['TransformJobName']"],
    ),
    "emr-job-flow": (
        lambda: EmrCreateJobFlowOperator(
            task_id="t", job_flow_overrides={"Name": "literal", "Instances": {}}
        ),
        ["job_flow_overrides['Name']"],
    ),
    "emr-job-flow-unnamed": (
        lambda: EmrCreateJobFlowOperator(task_id="t", job_flow_overrides={"Instances": {}}),
        ["job_flow_overrides['Name']"],
    ),
    "emr-steps": (
        lambda: EmrAddStepsOperator(
            task_id="t", job_flow_id="j-1", steps=[{"Name": TEMPLATED}, {"Name": "literal"}]
        ),
        ["steps[1]['Name']"],
    ),
}


@pytest.mark.parametrize("case", list(NAME_CASES))
def test_name_fields_of_each_operator(case):
    make_operator, literal_labels = NAME_CASES[case]
    with DAG("names", schedule=None, user_defined_macros={"aws_name": str}) as dag:
        make_operator()
    problems = integrity.naming_problems(dag)
    assert [p.split(") ", 1)[1].split(" is ")[0] for p in problems] == literal_labels


def test_names_computed_by_a_task_pass():
    @task
    def training_job_name() -> str:
        return "computed"

    @task
    def training_config() -> dict:
        return {"TrainingJobName": "computed"}

    with DAG("names", schedule=None) as dag:
        SageMakerTrainingOperator(task_id="by_name", config={"TrainingJobName": training_job_name()})
        SageMakerTrainingOperator(task_id="config_computed", config=training_config())
    assert integrity.naming_problems(dag) == []


def test_mapped_tasks_are_checked_for_every_expanded_value():
    @task
    def job_names() -> list[str]:
        return ["computed"]

    with DAG("mapped", schedule=None, user_defined_macros={"aws_name": str}) as dag:
        BatchOperator.partial(task_id="computed", job_definition="d", job_queue="q", deferrable=True).expand(
            job_name=job_names()
        )
        BatchOperator.partial(task_id="literal", job_definition="d", job_queue="q").expand(
            job_name=[TEMPLATED, "one-literal"]
        )
        EmrAddStepsOperator.partial(task_id="steps", job_flow_id="j-1", deferrable=True).expand(
            steps=[[{"Name": TEMPLATED}], [{"Name": "step-literal"}]]
        )

    assert [p.split(":")[0] for p in integrity.naming_problems(dag)] == [
        "task 'literal' (BatchOperator) job_name is the literal 'one-literal'",
        "task 'steps' (EmrAddStepsOperator) steps[0]['Name'] is the literal 'step-literal'",
    ]
    assert [p.split(" (")[0] for p in integrity.deferrable_problems(dag)] == ["task 'literal'"]
