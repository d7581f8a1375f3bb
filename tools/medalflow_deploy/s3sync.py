"""The bucket half of a deployment: the DAG folder synced, the pinned objects published, an old DAG folder restored.

Safe to rerun: a file whose content is already in S3 is not uploaded again (its object version stays the same) and
files gone from the project are deleted from the DAGs prefix. The bucket is versioned (MWAA requires it), which is
what lets ``--rollback`` copy an old version of every DAG object back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from medalflow_deploy.artifacts import Artifact, Log
from medalflow_deploy.config import DeployConfig, DeployError

PENDING_VERSION = "(new version)"
# DeleteObjects takes at most this many keys.
DELETE_BATCH = 1000


def error_code(error: Exception) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


def check_bucket_versioning(s3: Any, bucket: str) -> None:
    """MWAA pins requirements, plugins and the startup script by object version: the bucket must be versioned."""
    try:
        status = s3.get_bucket_versioning(Bucket=bucket).get("Status")
    except Exception as error:
        if error_code(error) == "NoSuchBucket":
            raise DeployError(f"s3://{bucket} does not exist: check MWAA_BUCKET (infra/ creates it)") from error
        raise
    if status != "Enabled":
        raise DeployError(f"s3://{bucket} has versioning {status or 'never enabled'}: MWAA needs it Enabled")


def is_current(s3: Any, bucket: str, key: str, artifact: Artifact, etag: str, metadata: Mapping | None) -> bool:
    """True when the object holds the artifact's bytes: by ETag (MD5 for plain uploads), else by our sha256."""
    if etag.strip('"') == artifact.md5:
        return True
    if metadata is None:  # e.g. SSE-KMS, where the ETag is not the MD5: compare the digest stored at upload
        metadata = s3.head_object(Bucket=bucket, Key=key).get("Metadata", {})
    return metadata.get("sha256") == artifact.sha256


def put(s3: Any, bucket: str, key: str, artifact: Artifact) -> str | None:
    response = s3.put_object(Bucket=bucket, Key=key, Body=artifact.body, Metadata={"sha256": artifact.sha256})
    return response.get("VersionId")


@dataclass
class SyncReport:
    uploaded: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    unchanged: int = 0


def remote_etags(s3: Any, bucket: str, prefix: str) -> dict[str, str]:
    etags: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        etags.update({item["Key"]: item["ETag"] for item in page.get("Contents", [])})
    return etags


def delete_keys(s3: Any, bucket: str, keys: list[str]) -> None:
    for start in range(0, len(keys), DELETE_BATCH):
        batch = [{"Key": key} for key in keys[start : start + DELETE_BATCH]]
        s3.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})


def sync_dags(s3: Any, config: DeployConfig, artifacts: Iterable[Artifact], dry_run: bool, log: Log) -> SyncReport:
    """Make <prefix>/dags/ hold exactly the artifacts: upload what differs, delete what the project no longer has."""
    remote = remote_etags(s3, config.bucket, config.dags_path + "/")
    report = SyncReport()
    wanted = set()
    for artifact in artifacts:
        key = config.key(artifact.key)
        wanted.add(key)
        if key in remote and is_current(s3, config.bucket, key, artifact, remote[key], None):
            report.unchanged += 1
            continue
        log(f"  {'would upload' if dry_run else 'upload'} s3://{config.bucket}/{key}")
        if not dry_run:
            put(s3, config.bucket, key, artifact)
        report.uploaded.append(key)

    report.deleted = sorted(set(remote) - wanted)
    for key in report.deleted:
        log(f"  {'would delete' if dry_run else 'delete'} s3://{config.bucket}/{key}")
    if not dry_run:
        delete_keys(s3, config.bucket, report.deleted)
    return report


def current_versions(s3: Any, bucket: str, prefix: str) -> dict[str, str]:
    """The version id of every current object under a prefix (delete markers excluded)."""
    versions: dict[str, str] = {}
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        versions.update({item["Key"]: item["VersionId"] for item in page.get("Versions", []) if item["IsLatest"]})
    return versions


def publish_versioned(s3: Any, config: DeployConfig, artifact: Artifact, dry_run: bool, log: Log) -> str:
    """Upload one MWAA-pinned object unless S3 already has this content; return the object version to pin."""
    key = config.key(artifact.key)
    try:
        head = s3.head_object(Bucket=config.bucket, Key=key)
    except Exception as error:
        if error_code(error) not in ("404", "NoSuchKey", "NotFound"):
            raise
        head = None
    # A "null" version predates versioning on the bucket: MWAA cannot pin it, so upload a versioned copy.
    versioned = head is not None and head.get("VersionId") not in (None, "null")
    if versioned and is_current(s3, config.bucket, key, artifact, head["ETag"], head.get("Metadata", {})):
        log(f"  unchanged s3://{config.bucket}/{key} (version {head['VersionId']})")
        return head["VersionId"]
    if dry_run:
        log(f"  would upload s3://{config.bucket}/{key}")
        return PENDING_VERSION
    version = put(s3, config.bucket, key, artifact)
    if not version:
        raise DeployError(f"S3 returned no version for s3://{config.bucket}/{key}: is the bucket versioned?")
    log(f"  upload s3://{config.bucket}/{key} (version {version})")
    return version


def restore_dags(s3: Any, config: DeployConfig, recorded: Mapping[str, str], dry_run: bool, log: Log) -> SyncReport:
    """Make <prefix>/dags/ hold the recorded object versions again: copy each old version back over the current
    one (a new version with the old bytes), delete what the recorded deployment did not have."""
    current = current_versions(s3, config.bucket, config.dags_path + "/")
    report = SyncReport()
    for key, version in sorted(recorded.items()):
        if current.get(key) == version:
            report.unchanged += 1
            continue
        log(f"  {'would restore' if dry_run else 'restore'} s3://{config.bucket}/{key} (version {version})")
        if not dry_run:
            try:
                source = {"Bucket": config.bucket, "Key": key, "VersionId": version}
                s3.copy_object(Bucket=config.bucket, Key=key, CopySource=source)
            except Exception as error:
                if error_code(error) in ("NoSuchVersion", "NoSuchKey", "404", "InvalidArgument"):
                    raise DeployError(
                        f"s3://{config.bucket}/{key} version {version} is gone (a lifecycle rule expired it?): "
                        "this deployment cannot be restored; redeploy from its git commit instead"
                    ) from error
                raise
        report.uploaded.append(key)
    report.deleted = sorted(set(current) - set(recorded))
    for key in report.deleted:
        log(f"  {'would delete' if dry_run else 'delete'} s3://{config.bucket}/{key}")
    if not dry_run:
        delete_keys(s3, config.bucket, report.deleted)
    return report
