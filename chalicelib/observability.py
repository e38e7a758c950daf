"""Powertools Logger / Tracer / Metrics, one instance each for the whole app. Structured JSON logs
carry the image digest as correlation id; metrics go out as CloudWatch EMF."""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from chalicelib.models import SEVERITIES_WORST_FIRST, ImageScan

# API routes publish no metrics; Powertools warns on every such invocation otherwise.
warnings.filterwarnings("ignore", message="No application metrics to publish")

SERVICE = "lifeguard"
logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(namespace="Lifeguard", service=SERVICE)


def record_scan_metrics(scan: ImageScan) -> None:
    """Images scanned, findings by severity, scan seconds."""
    metrics.add_metric(name="ImagesScanned", unit=MetricUnit.Count, value=1)
    for severity in SEVERITIES_WORST_FIRST:
        count = scan.summary.vulnerabilities.get(severity, 0)
        metrics.add_metric(name=f"Findings{severity.value.title()}", unit=MetricUnit.Count, value=count)
    if scan.summary.scan_seconds is not None:
        metrics.add_metric(name="ScanSeconds", unit=MetricUnit.Seconds, value=scan.summary.scan_seconds)
