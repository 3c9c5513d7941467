"""Scheduling: the jobs of ``publisher run`` and the service that runs them."""

from publisher.scheduling.jobs import DigestTime, JobKind, JobSpec, job_table
from publisher.scheduling.service import ListenError, PassReport, Service

__all__ = ["DigestTime", "JobKind", "JobSpec", "ListenError", "PassReport", "Service", "job_table"]
