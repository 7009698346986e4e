"""Drive the SageMaker Python SDK v2 against the sandbox. Runs in the SDK's test-only environment.

`python driver.py <case> <bucket>`: prints one line `RESULT <json>` the test reads. The environment
points boto3 at the sandbox (AWS_ENDPOINT_URL) and the SDK at a config file that opts out of telemetry
and names the default bucket (the SDK otherwise asks STS at its hard-coded regional endpoint).
"""

import json
import sys
from pathlib import Path

import boto3
import sagemaker

HERE = Path(__file__).resolve().parent
ROLE = "arn:aws:iam::123456789012:role/orchard-sagemaker-execution"


def estimator_fit(session, bucket):
    from sagemaker.pytorch import PyTorch

    session.upload_string_as_file_body("a\nb\nc\n", bucket, "sdk/train/data.txt")
    estimator = PyTorch(
        entry_point="train.py",
        source_dir=str(HERE / "code"),
        role=ROLE,
        framework_version="2.5",
        py_version="py311",
        instance_count=1,
        instance_type="ml.m5.large",
        sagemaker_session=session,
        hyperparameters={"epochs": 2},
        output_path=f"s3://{bucket}/sdk/models",
        metric_definitions=[{"Name": "loss", "Regex": r"loss=([0-9.]+)"}],
    )
    estimator.fit({"train": f"s3://{bucket}/sdk/train/"})  # defaults: wait=True, logs="All"
    description = estimator.latest_training_job.describe()
    return {
        "status": description["TrainingJobStatus"],
        "model": estimator.model_data,
        "metrics": description.get("FinalMetricDataList", []),
    }


def processor_run(session, bucket, image):
    from sagemaker.processing import ProcessingInput, ProcessingOutput, Processor

    session.upload_string_as_file_body("1\n2\n", bucket, "sdk/proc/in/a.txt")
    processor = Processor(
        role=ROLE, image_uri=image, instance_count=1, instance_type="ml.m5.large", sagemaker_session=session
    )
    processor.run(
        inputs=[
            ProcessingInput(source=f"s3://{bucket}/sdk/proc/in/", destination="/opt/ml/processing/input")
        ],
        outputs=[
            ProcessingOutput(source="/opt/ml/processing/output", destination=f"s3://{bucket}/sdk/proc/out")
        ],
        arguments=["/opt/ml/processing/input", "/opt/ml/processing/output"],
    )
    description = processor.latest_job.describe()
    return {
        "status": description["ProcessingJobStatus"],
        "reason": description.get("FailureReason"),
        "output": session.read_s3_file(bucket, "sdk/proc/out/counts.json"),
    }


def framework_processor_run(session, bucket):
    from sagemaker.processing import FrameworkProcessor, ProcessingInput, ProcessingOutput
    from sagemaker.pytorch import PyTorch

    session.upload_string_as_file_body("1\n2\n3\n", bucket, "sdk/fproc/in/a.txt")
    processor = FrameworkProcessor(
        estimator_cls=PyTorch,
        framework_version="2.5",
        py_version="py311",
        role=ROLE,
        instance_count=1,
        instance_type="ml.m5.large",
        sagemaker_session=session,
    )
    processor.run(
        code="process.py",
        source_dir=str(HERE / "code"),
        inputs=[
            ProcessingInput(
                source=f"s3://{bucket}/sdk/fproc/in/", destination="/opt/ml/processing/input/data"
            )
        ],
        outputs=[
            ProcessingOutput(source="/opt/ml/processing/output", destination=f"s3://{bucket}/sdk/fproc/out")
        ],
    )
    description = processor.latest_job.describe()
    return {
        "status": description["ProcessingJobStatus"],
        "reason": description.get("FailureReason"),
        "output": session.read_s3_file(bucket, "sdk/fproc/out/counts.json"),
    }


def async_predict(session, bucket, image):
    import io
    import tarfile

    from sagemaker.async_inference import AsyncInferenceConfig, WaiterConfig
    from sagemaker.deserializers import JSONDeserializer
    from sagemaker.exceptions import AsyncInferenceModelError
    from sagemaker.model import Model
    from sagemaker.predictor import Predictor
    from sagemaker.serializers import JSONSerializer

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        data = json.dumps({"name": "sdk-echo"}).encode()
        info = tarfile.TarInfo("model.json")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    session.upload_string_as_file_body(buffer.getvalue(), bucket, "sdk/async/model.tar.gz")
    model = Model(
        image_uri=image,
        model_data=f"s3://{bucket}/sdk/async/model.tar.gz",
        role=ROLE,
        sagemaker_session=session,
        name="sdk-echo",
        predictor_cls=Predictor,
    )
    predictor = model.deploy(
        initial_instance_count=1,
        instance_type="ml.m5.large",
        endpoint_name="sdk-echo",
        async_inference_config=AsyncInferenceConfig(
            output_path=f"s3://{bucket}/sdk/async/out/", failure_path=f"s3://{bucket}/sdk/async/fail/"
        ),
        serializer=JSONSerializer(),
        deserializer=JSONDeserializer(),
    )
    # get_result() without a WaiterConfig looks once; with one it polls the output and failure paths, each
    # in a thread of its own. The thread of the path that never fills polls on to max_attempts after the
    # answer came (SDK 2.x, predictor_async._check_output_and_failure_paths), and the interpreter waits for
    # it at exit: 120 attempts cost two minutes per call. The sandbox answers in seconds; 20 is ample.
    waiter = WaiterConfig(max_attempts=20, delay=1)
    response = predictor.predict_async(data={"items": [1, 2, 3]})
    result = response.get_result(waiter)
    failing = predictor.predict_async(data={"no_items": True})
    try:
        failing.get_result(waiter)
        failure = None
    except AsyncInferenceModelError as error:  # raised with the failure object's content
        failure = f"{type(error).__name__}: {error}"
    predictor.delete_endpoint()
    return {"result": result, "failure": failure}


def main():
    case, bucket = sys.argv[1], sys.argv[2]
    session = sagemaker.Session(boto_session=boto3.Session(), default_bucket=bucket)
    session.default_bucket()  # created here when missing, as the SDK does
    if case == "estimator":
        result = estimator_fit(session, bucket)
    elif case == "processor":
        result = processor_run(session, bucket, sys.argv[3])
    elif case == "framework_processor":
        result = framework_processor_run(session, bucket)
    elif case == "async":
        result = async_predict(session, bucket, sys.argv[3])
    else:
        raise SystemExit(f"unknown case {case}")
    print("\nRESULT " + json.dumps(result, default=str), flush=True)  # the SDK prints progress dots


if __name__ == "__main__":
    main()
