"""The run report every pipeline publishes: markdown, PNG figures, console links and a cost estimate.

    report = Report("Pose training", dag.dag_id, run_id)
    report.add_metrics({"test RMSE (px)": 4.2, "images": 1200})
    fig = new_figure(figsize=(6, 4)); fig.add_subplot().plot(losses)
    report.add_figure("loss", fig)
    report.add_console_link("batch_job", job_id, region)
    report.add_cost([{"job": job_name, "service": "batch", "instance_type": "g4dn.xlarge",
                      "billable_seconds": 1834, "region": region}])
    uri = report.publish(S3Hook(aws_conn_id=...), bucket, "reports/")

``publish`` writes, under ``<prefix>/<dag_id>/<run part>-<hash>/`` (``orchard.naming``'s s3_prefix):
``figures/<name>.png`` first, then ``report.md`` (which links them by relative path) and ``report.json``
(the metrics, links and cost as data), and returns the ``s3://`` URI of report.md.
matplotlib is imported only when a figure is rendered: DAG files import this module at parse time.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from orchard import naming, pricing

if TYPE_CHECKING:
    from matplotlib.figure import Figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# zlib level of the figures' PNGs (Pillow's default is 6): the same pixels, encoded in about half the time
# for a file ~17 % larger (auto_labeling's grid of photos: benchmarks/report_png_encoding.py). Reports are
# written once and read a few times; their encoding is on each pipeline's critical path.
PNG_COMPRESS_LEVEL = 1
PUT_CONCURRENCY = 8  # figures written at once (botocore keeps 10 connections a client)

# Console deep links, in the shapes the AWS consoles (and the Amazon provider's operator links) use.
CONSOLE_PATHS: dict[str, tuple[str, str]] = {
    "batch_job": ("Batch job", "batch/home?region={region}#jobs/detail/{id}"),
    "sagemaker_training_job": ("SageMaker training job", "sagemaker/home?region={region}#/jobs/{id}"),
    "sagemaker_processing_job": (
        "SageMaker processing job",
        "sagemaker/home?region={region}#/processing-jobs/{id}",
    ),
    "sagemaker_transform_job": (
        "SageMaker transform job",
        "sagemaker/home?region={region}#/transform-jobs/{id}",
    ),
    "sagemaker_compilation_job": (
        "SageMaker compilation job",
        "sagemaker/home?region={region}#/compilation-jobs/{id}",
    ),
    "sagemaker_labeling_job": (
        "SageMaker labeling job",
        "sagemaker/home?region={region}#/labeling-jobs/{id}",
    ),
    "sagemaker_endpoint": ("SageMaker endpoint", "sagemaker/home?region={region}#/endpoints/{id}"),
    "emr_cluster": ("EMR cluster", "emr/home?region={region}#/clusterDetails/{id}"),
    "iot_job": ("IoT job", "iot/home?region={region}#/job/{id}"),
    "iot_thing": ("IoT thing", "iot/home?region={region}#/thing/{id}"),
}


def console_url(service: str, resource_id: str, region: str) -> str:
    """AWS console URL of one resource. Batch wants the job *id*, EMR the cluster id, others the name."""
    if service not in CONSOLE_PATHS:
        raise ValueError(f"no console link for {service!r}; known: {', '.join(sorted(CONSOLE_PATHS))}")
    if not resource_id or not region:
        raise ValueError(f"console link for {service} needs a resource id and a region")
    path = CONSOLE_PATHS[service][1].format(region=quote(region), id=quote(str(resource_id), safe=""))
    return f"{_console_host(region)}/{path}"


def _console_host(region: str) -> str:
    if region.startswith("cn-"):
        return "https://console.amazonaws.cn"
    if region.startswith("us-gov-"):
        return "https://console.amazonaws-us-gov.com"
    return f"https://{region}.console.aws.amazon.com"


def new_figure(**kwargs: Any) -> Figure:
    """A matplotlib Figure on the Agg canvas, outside pyplot: no global registry to leak in a worker."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(**kwargs)
    FigureCanvasAgg(figure)
    return figure


@dataclass(frozen=True)
class CostLine:
    """One billed job: ``instance_count`` x ``instance_type`` for ``billable_seconds`` (as AWS reports)."""

    job: str
    service: str
    instance_type: str
    billable_seconds: float
    instance_count: int = 1
    region: str | None = None
    spot_savings: float = 0.0


class Report:
    """A run report under construction; every ``add_*`` appends a block and returns the report."""

    def __init__(self, title: str, dag_id: str, run_id: str, *, generated_at: datetime | None = None):
        naming.resource_name("s3_prefix", dag_id, run_id)  # validates both ids early
        self.title = title
        self.dag_id = dag_id
        self.run_id = run_id
        self.generated_at = generated_at or datetime.now(UTC)
        self.metrics: dict[str, Any] = {}
        self.links: list[dict[str, str]] = []
        self.figures: dict[str, bytes] = {}
        self.cost_usd: float | None = None
        self._blocks: list[str] = []

    def add_text(self, markdown: str) -> Report:
        self._blocks.append(markdown.strip())
        return self

    def add_metrics(self, metrics: Mapping[str, Any], title: str = "Metrics") -> Report:
        self.metrics.update(metrics)
        rows = [[name, _format(value)] for name, value in metrics.items()]
        self._blocks.append(f"## {title}\n\n{_table(rows, ['Metric', 'Value'])}")
        return self

    def add_table(
        self,
        rows: Iterable[Sequence[Any] | Mapping[str, Any]],
        headers: Sequence[str],
        title: str | None = None,
    ) -> Report:
        cells = [_row(row, headers) for row in rows]
        heading = f"## {title}\n\n" if title else ""
        self._blocks.append(heading + _table(cells, headers))
        return self

    def add_figure(self, name: str, fig: Figure | bytes, caption: str = "") -> Report:
        """Render ``fig`` (a matplotlib Figure, or PNG bytes) now, so the caller may close it."""
        stem = _figure_stem(name)
        if stem in self.figures:
            raise ValueError(f"figure {stem!r} is already in the report; give each figure its own name")
        self.figures[stem] = _png(fig)
        self._blocks.append(
            f"![{_escape(caption or name)}](figures/{stem}.png)" + (f"\n\n*{caption}*" if caption else "")
        )
        return self

    def add_console_link(self, service: str, resource_name: str, region: str, label: str = "") -> Report:
        url = console_url(service, resource_name, region)
        self.links.append(
            {
                "service": service,
                "resource": resource_name,
                "region": region,
                "url": url,
                "label": label or f"{CONSOLE_PATHS[service][0]} {resource_name}",
            }
        )
        return self

    def add_cost(self, lines: Iterable[CostLine | Mapping[str, Any]], region: str | None = None) -> Report:
        """A cost table: job -> type x count x billable seconds x hourly price = USD, with a total."""
        rows, total, missing = [], 0.0, []
        for line in (_cost_line(item, region) for item in lines):
            try:
                price = pricing.hourly_price(line.service, line.instance_type, line.region or "")
                usd = pricing.estimate_cost(
                    line.service,
                    line.instance_type,
                    line.region or "",
                    line.billable_seconds,
                    line.instance_count,
                    line.spot_savings,
                )
            except KeyError as error:
                missing.append(f"{line.job}: {error}")
                price = usd = None
            total += usd or 0.0
            rows.append(
                [
                    line.job,
                    line.service,
                    line.instance_type,
                    line.instance_count,
                    f"{line.billable_seconds:,.0f}",
                    _usd(price, 4),
                    _usd(usd, 2),
                ]
            )
        self.cost_usd = round((self.cost_usd or 0.0) + total, 6)
        rows.append(["**Total**", "", "", "", "", "", f"**{'≥ ' if missing else ''}{_usd(total, 2)}**"])
        headers = ["Job", "Service", "Instance type", "Count", "Billable s", "USD/hour", "USD"]
        notes = "".join(f"\n- no price: {_escape(m)}" for m in missing)
        self._blocks.append(
            f"## Estimated cost\n\n{_table(rows, headers)}\n\n"
            f"Estimate: on-demand prices as of {pricing.PRICES_AS_OF} x the billable seconds AWS reported; "
            f"storage, data transfer and requests are not included. Prices: {pricing.PRICE_SOURCE}.{notes}"
        )
        return self

    def to_markdown(self) -> str:
        header = (
            f"- **DAG:** `{self.dag_id}`\n- **Run:** `{self.run_id}`\n"
            f"- **Generated:** {self.generated_at.strftime('%Y-%m-%d %H:%M UTC')}"
        )
        parts = [f"# {self.title}", header, *self._blocks]
        if self.links:
            parts.append(
                "## AWS console\n\n"
                + "\n".join(f"- [{_escape(link['label'])}]({link['url']})" for link in self.links)
            )
        return "\n\n".join(parts) + "\n"

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-safe data (report.json): what tests and other tools read."""
        return {
            "title": self.title,
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "generated_at": self.generated_at.isoformat(),
            "metrics": _json_safe(self.metrics),
            "cost_usd": self.cost_usd,
            "prices_as_of": pricing.PRICES_AS_OF,
            "links": self.links,
            "figures": [f"figures/{stem}.png" for stem in self.figures],
        }

    def key_prefix(self, prefix: str = "") -> str:
        """``<prefix>/<dag_id>/<run part>-<hash>/``: where ``publish`` writes."""
        head = prefix.strip("/")
        return (f"{head}/" if head else "") + naming.resource_name("s3_prefix", self.dag_id, self.run_id)

    def publish(self, s3_hook_or_client: Any, bucket: str, prefix: str = "") -> str:
        """Write figures, then report.md and report.json; returns ``s3://<bucket>/<...>/report.md``.

        Takes an Amazon provider ``S3Hook`` (its connection, retries and endpoint are used) or a boto3
        S3 client. The figures and report.json are written at once (independent PutObjects on one
        thread-safe client), report.md after them, so it never links a figure that is not there yet.
        """
        from orchard.aws import at_once

        client = s3_hook_or_client.get_conn() if hasattr(s3_hook_or_client, "get_conn") else s3_hook_or_client
        base = self.key_prefix(prefix)
        figures = [
            partial(
                client.put_object,
                Bucket=bucket,
                Key=f"{base}figures/{stem}.png",
                Body=png,
                ContentType="image/png",
            )
            for stem, png in self.figures.items()
        ]
        data = partial(
            client.put_object,
            Bucket=bucket,
            Key=f"{base}report.json",
            Body=json.dumps(self.to_dict(), indent=2).encode(),
            ContentType="application/json",
        )
        at_once(*figures, data, limit=PUT_CONCURRENCY)
        key = f"{base}report.md"
        client.put_object(
            Bucket=bucket,
            Key=key,
            Body=self.to_markdown().encode(),
            ContentType="text/markdown; charset=utf-8",
        )
        return f"s3://{bucket}/{key}"


def _png(fig: Any) -> bytes:
    if isinstance(fig, (bytes, bytearray)):
        if not bytes(fig).startswith(PNG_MAGIC):
            raise ValueError("figure bytes are not a PNG (missing the PNG signature)")
        return bytes(fig)
    if not hasattr(fig, "savefig"):
        raise TypeError(f"add_figure takes a matplotlib Figure or PNG bytes, got {type(fig).__name__}")
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: matplotlib is slow to import

    FigureCanvasAgg(fig)  # render with Agg whatever backend made the figure: workers have no display
    buffer = io.BytesIO()
    fig.savefig(
        buffer, format="png", dpi=110, bbox_inches="tight", pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL}
    )
    return buffer.getvalue()


def _figure_stem(name: str) -> str:
    stem = re.sub(r"[^a-z0-9._-]+", "-", name.strip().lower()).strip("-.")
    stem = stem[:-4] if stem.endswith(".png") else stem
    if not stem:
        raise ValueError(f"figure name {name!r} has no usable characters (use letters, digits, '-', '_')")
    return stem


def _cost_line(item: CostLine | Mapping[str, Any], region: str | None) -> CostLine:
    line = item if isinstance(item, CostLine) else CostLine(**item)
    if not line.region:
        if not region:
            raise ValueError(
                f"cost line {line.job!r} has no region; pass region= to add_cost or set it per line"
            )
        line = CostLine(**{**asdict(line), "region": region})
    return line


def _row(row: Sequence[Any] | Mapping[str, Any], headers: Sequence[str]) -> list[Any]:
    values = [row.get(h, "") for h in headers] if isinstance(row, Mapping) else list(row)
    if len(values) != len(headers):
        raise ValueError(f"table row {values!r} has {len(values)} cells for {len(headers)} headers")
    return values


def _table(rows: Iterable[Sequence[Any]], headers: Sequence[str]) -> str:
    lines = ["| " + " | ".join(_escape(h) for h in headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(_escape(_format(cell)) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _format(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, float):
        return str(value)
    return f"{value:,.1f}" if abs(value) >= 1000 else f"{value:.4g}"


def _usd(value: float | None, places: int) -> str:
    return "n/a" if value is None else f"${value:,.{places}f}"


def _escape(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\r", "").replace("\n", "<br>")


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
