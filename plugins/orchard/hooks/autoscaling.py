"""Application Auto Scaling for a SageMaker async endpoint: scale with the backlog, down to zero.

Follows AWS's documented setup for asynchronous endpoints: a scalable target (min 0), a target-tracking
policy on `ApproximateBacklogSizePerInstance`, and — because target tracking cannot scale out from
zero instances — a step policy fired by a CloudWatch alarm on `HasBacklogWithoutCapacity`.
The provider has no Application Auto Scaling hook.
"""

from __future__ import annotations

from typing import Any

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from botocore.exceptions import ClientError

NAMESPACE = "sagemaker"
DIMENSION = "sagemaker:variant:DesiredInstanceCount"


def resource_id(endpoint_name: str, variant: str) -> str:
    return f"endpoint/{endpoint_name}/variant/{variant}"


def policy_names(endpoint_name: str) -> dict[str, str]:
    return {
        "target": f"{endpoint_name}-backlog-per-instance"[:256],
        "step": f"{endpoint_name}-backlog-without-capacity"[:256],
        "alarm": f"{endpoint_name}-has-backlog-without-capacity"[:255],
    }


class EndpointAutoScalingHook(AwsBaseHook):
    def __init__(self, *args: Any, **kwargs: Any):
        kwargs["client_type"] = "application-autoscaling"
        super().__init__(*args, **kwargs)

    def scale_with_backlog(
        self,
        endpoint_name: str,
        variant: str,
        *,
        max_instances: int,
        target_backlog: float = 5.0,
        scale_in_cooldown: int = 300,
        scale_out_cooldown: int = 300,
    ) -> dict[str, str]:
        rid, names = resource_id(endpoint_name, variant), policy_names(endpoint_name)
        self.conn.register_scalable_target(
            ServiceNamespace=NAMESPACE,
            ResourceId=rid,
            ScalableDimension=DIMENSION,
            MinCapacity=0,
            MaxCapacity=max_instances,
        )
        target = self.conn.put_scaling_policy(
            PolicyName=names["target"],
            ServiceNamespace=NAMESPACE,
            ResourceId=rid,
            ScalableDimension=DIMENSION,
            PolicyType="TargetTrackingScaling",
            TargetTrackingScalingPolicyConfiguration={
                "TargetValue": target_backlog,
                "CustomizedMetricSpecification": {
                    "MetricName": "ApproximateBacklogSizePerInstance",
                    "Namespace": "AWS/SageMaker",
                    "Dimensions": [{"Name": "EndpointName", "Value": endpoint_name}],
                    "Statistic": "Average",
                },
                "ScaleInCooldown": scale_in_cooldown,
                "ScaleOutCooldown": scale_out_cooldown,
            },
        )
        step = self.conn.put_scaling_policy(
            PolicyName=names["step"],
            ServiceNamespace=NAMESPACE,
            ResourceId=rid,
            ScalableDimension=DIMENSION,
            PolicyType="StepScaling",
            StepScalingPolicyConfiguration={
                "AdjustmentType": "ChangeInCapacity",
                "MetricAggregationType": "Average",
                "Cooldown": scale_out_cooldown,
                "StepAdjustments": [{"MetricIntervalLowerBound": 0, "ScalingAdjustment": 1}],
            },
        )
        self._cloudwatch().put_metric_alarm(
            AlarmName=names["alarm"],
            MetricName="HasBacklogWithoutCapacity",
            Namespace="AWS/SageMaker",
            Statistic="Average",
            EvaluationPeriods=2,
            DatapointsToAlarm=2,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="missing",
            Dimensions=[{"Name": "EndpointName", "Value": endpoint_name}],
            Period=60,
            AlarmActions=[step["PolicyARN"]],
        )
        return {
            "target_policy": target["PolicyARN"],
            "step_policy": step["PolicyARN"],
            "alarm": names["alarm"],
        }

    def remove_scaling(
        self, endpoint_name: str, variant: str, autoscaling: Any = None, cloudwatch: Any = None
    ) -> list[str]:
        """Delete the alarm, both policies and the scalable target; what was already gone is skipped.
        `autoscaling`, `cloudwatch`: clients a caller made on a session it holds; none: the hook's own."""
        rid, names = resource_id(endpoint_name, variant), policy_names(endpoint_name)
        removed = []
        autoscaling = autoscaling or self.conn
        cloudwatch = cloudwatch or self._cloudwatch()
        # DeleteAlarms succeeds on a name that does not exist: describe first, so `removed` says what was there.
        if cloudwatch.describe_alarms(AlarmNames=[names["alarm"]]).get("MetricAlarms"):
            cloudwatch.delete_alarms(AlarmNames=[names["alarm"]])
            removed.append(f"alarm {names['alarm']}")
        for name in (names["target"], names["step"]):
            if self._ignore_missing(
                autoscaling.delete_scaling_policy,
                PolicyName=name,
                ServiceNamespace=NAMESPACE,
                ResourceId=rid,
                ScalableDimension=DIMENSION,
            ):
                removed.append(f"policy {name}")
        if self._ignore_missing(
            autoscaling.deregister_scalable_target,
            ServiceNamespace=NAMESPACE,
            ResourceId=rid,
            ScalableDimension=DIMENSION,
        ):
            removed.append(f"scalable target {rid}")
        return removed

    def _cloudwatch(self) -> Any:
        return AwsBaseHook(
            aws_conn_id=self.aws_conn_id,
            region_name=self.region_name,
            verify=self.verify,
            config=self.config,
            client_type="cloudwatch",
        ).conn

    @staticmethod
    def _ignore_missing(call: Any, **kwargs: Any) -> bool:
        try:
            call(**kwargs)
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] in ("ObjectNotFoundException", "ValidationException"):
                return False
            raise
