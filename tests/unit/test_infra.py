"""The CloudFormation templates in infra/ (infra/README.md).

Static checks on every template, read with cfn-lint's YAML loader (it turns ``!Ref``/``!Sub`` into their JSON form):
names, the six tags, least privilege of the MWAA execution role, bucket settings, the Athena workgroup, the MWAA
environment (its request validated against botocore's ``mwaa`` model, which moto cannot create), the parameter
files, the suppressions and the README's lists. cfn-lint and checkov themselves run in ``make infra-lint``.

Then the templates moto's CloudFormation can run are deployed, in the documented order, to the session's moto server
and what they created is read back through boto3. What moto's CloudFormation does not implement (MOTO_MISSING_TYPES,
MOTO_IGNORED_PROPERTIES) the test provides itself with the API call CloudFormation's own provider makes, from the
template's rendered properties. cfn-lint's loader comes with moto[server] in the Airflow virtualenv.
"""

from __future__ import annotations

import ast
import copy
import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore.validate import validate_parameters
from cfnlint.decode import cfn_yaml
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from medalflow import settings

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
# The order of creation (infra/README.md): a stack imports only what the stacks before it export.
STACK_ORDER = [
    "storage", "network", "alerts", "catalog", "athena", "execution-role", "governance", "mwaa", "monitoring",
]  # fmt: skip
ENVIRONMENTS = ["dev", "hom", "prod"]
TAG_KEYS = {"Project", "Environment", "ManagedBy", "Owner", "Layer", "Component"}
LAYERS = {"raw", "bronze", "silver", "gold", "observability", "all", "none"}
# The Glue databases: one per layer, and the pipeline's own observability facts.
GLUE_DATABASES = ["raw", "bronze", "silver", "gold", "observability"]
ENVIRONMENT_NAME = "${Project}-${Environment}-airflow"
LOG_COMPONENTS = ["DAGProcessing", "Scheduler", "Task", "WebServer", "Worker"]

# Where each named resource type keeps its name, and the form that name takes.
NAMES = {
    "AWS::S3::Bucket": ("BucketName", r"\$\{Project\}-\$\{Environment\}-[a-z-]+-\$\{AWS::AccountId\}"),
    "AWS::KMS::Alias": ("AliasName", r"alias/\$\{Project\}-\$\{Environment\}-[a-z-]+"),
    "AWS::SNS::Topic": ("TopicName", r"\$\{Project\}-\$\{Environment\}-[a-z-]+"),
    "AWS::IAM::Role": ("RoleName", r"\$\{Project\}-\$\{Environment\}-[a-z-]+"),
    "AWS::Athena::WorkGroup": ("Name", r"\$\{Project\}-\$\{Environment\}-[a-z-]+"),
    "AWS::MWAA::Environment": ("Name", r"\$\{Project\}-\$\{Environment\}-[a-z-]+"),
    "AWS::EC2::SecurityGroup": ("GroupName", r"\$\{Project\}-\$\{Environment\}-[a-z-]+"),
    # Glue database names take no hyphen: {project}_{env}_{layer}.
    "AWS::Glue::Database": (
        "DatabaseInput.Name",
        r"\$\{Project\}_\$\{Environment\}_(raw|bronze|silver|gold|observability)",
    ),
    # MWAA decides these: airflow-<environment name>-<component>.
    "AWS::Logs::LogGroup": ("LogGroupName", r"airflow-\$\{Project\}-\$\{Environment\}-airflow-[A-Za-z]+"),
    "AWS::IAM::ManagedPolicy": ("ManagedPolicyName", r"\$\{Project\}-\$\{Environment\}-[a-z-]+"),
    "AWS::CloudWatch::Alarm": ("AlarmName", r"\$\{Project\}-\$\{Environment\}-[a-z-]+"),
    "AWS::CloudWatch::Dashboard": ("DashboardName", r"\$\{Project\}-\$\{Environment\}-[a-z-]+"),
}
# Types whose resources CloudFormation names itself or that have no name (tagged Name where EC2 allows).
UNNAMED = {
    "AWS::KMS::Key",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::SNS::Subscription",
    "AWS::EC2::VPC",
    "AWS::EC2::InternetGateway",
    "AWS::EC2::VPCGatewayAttachment",
    "AWS::EC2::Subnet",
    "AWS::EC2::RouteTable",
    "AWS::EC2::Route",
    "AWS::EC2::SubnetRouteTableAssociation",
    "AWS::EC2::EIP",
    "AWS::EC2::NatGateway",
    "AWS::EC2::VPCEndpoint",
    "AWS::EC2::FlowLog",
    "AWS::EC2::SecurityGroupIngress",
    "AWS::EC2::SecurityGroupEgress",
    # Lake Formation tags are named by their key, account-wide; associations and grants have no name.
    "AWS::LakeFormation::Tag",
    "AWS::LakeFormation::TagAssociation",
    "AWS::LakeFormation::PrincipalPermissions",
}
# Actions that take no resource type, so "*" is the only resource they can have; each is justified in the template.
RESOURCELESS_ACTIONS = {"s3:GetAccountPublicAccessBlock", "cloudwatch:PutMetricData", "lakeformation:GetDataAccess"}


def load(stem: str) -> dict[str, Any]:
    return json.loads(json.dumps(cfn_yaml.load(str(INFRA / f"{stem}.yaml"))))


TEMPLATES = {stem: load(stem) for stem in STACK_ORDER}


def parameter_file(environment: str) -> dict[str, dict[str, str]]:
    return json.loads((INFRA / "parameters" / f"{environment}.json").read_text())


def stack_parameters(environment: str, stem: str) -> dict[str, str]:
    values = parameter_file(environment)
    return {**values["common"], **values[stem]}


def resources(*types: str) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for stem, template in TEMPLATES.items():
        for logical_id, resource in template["Resources"].items():
            if not types or resource["Type"] in types:
                yield stem, logical_id, resource


def text(node: Any) -> str:
    """An intrinsic function as readable text: !Sub with its variables filled in, imports as import(<name>)."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and len(node) == 1:
        (function, argument), *_ = node.items()
        if function == "Ref":
            return "${" + argument + "}"
        if function == "Fn::Sub":
            if isinstance(argument, str):
                return argument
            template, variables = argument
            for name, value in variables.items():
                template = template.replace("${" + name + "}", text(value))
            return template
        if function == "Fn::ImportValue":
            return f"import({text(argument)})"
        if function == "Fn::GetAtt":
            return "${" + ".".join(argument) + "}"
    return json.dumps(node, sort_keys=True)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def env_import(name: str) -> str:
    return f"import(${{Project}}-${{Environment}}-{name})"


# --- a small CloudFormation renderer: parameters, pseudo parameters, conditions and intrinsic functions ---------------

NO_VALUE = object()


class Renderer:
    """Renders a template's values as CloudFormation would, given parameter values and the exports to import."""

    def __init__(
        self,
        template: dict[str, Any],
        parameters: dict[str, str],
        imports: Callable[[str], str],
        region: str,
        account: str,
    ) -> None:
        self.template = template
        self.imports = imports
        self.values: dict[str, Any] = {
            "AWS::Region": region,
            "AWS::AccountId": account,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        for name, declaration in template.get("Parameters", {}).items():
            value = parameters.get(name, declaration.get("Default"))
            if value is None:
                raise KeyError(f"parameter {name} has no value and no default")
            if declaration["Type"] == "Number":
                value = int(value)
            elif declaration["Type"] == "CommaDelimitedList":
                value = str(value).split(",")
            self.values[name] = value
        # Resources' physical ids (what !Ref returns) and attributes (!GetAtt), as they become known.
        self.physical: dict[str, str] = {}
        self.attributes: dict[str, str] = {}

    def condition(self, name: str) -> bool:
        return bool(self.value(self.template["Conditions"][name]))

    def active(self, resource: dict[str, Any]) -> bool:
        return "Condition" not in resource or self.condition(resource["Condition"])

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.values:
            return self.values[name]
        return self.physical[name]

    def sub(self, template: str, variables: dict[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return str(self.value(variables[name]))
            if "." in name and name.split(".")[0] in self.template["Resources"]:
                return self.attributes[name]
            return str(self.ref(name))

        return re.sub(r"\$\{([^}]+)\}", replace, template)

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            return [item for item in (self.value(x) for x in node) if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (function, argument), *_ = node.items()
            if function == "Ref":
                return self.ref(argument)
            if function == "Condition":
                return self.condition(argument)
            if function == "Fn::Sub":
                template, variables = (argument, {}) if isinstance(argument, str) else argument
                return self.sub(template, variables)
            if function == "Fn::ImportValue":
                return self.imports(self.value(argument))
            if function == "Fn::GetAtt":
                return self.attributes[".".join(argument)]
            if function == "Fn::If":
                condition, when_true, when_false = argument
                return self.value(when_true if self.condition(condition) else when_false)
            if function == "Fn::Equals":
                left, right = (self.value(x) for x in argument)
                return str(left) == str(right)
            if function == "Fn::Not":
                return not self.value(argument[0])
            if function == "Fn::And":
                return all(self.value(x) for x in argument)
            if function == "Fn::Or":
                return any(self.value(x) for x in argument)
            if function == "Fn::Join":
                separator, items = argument
                return separator.join(str(x) for x in self.value(items))
            if function == "Fn::Split":
                separator, string = argument
                return str(self.value(string)).split(separator)
            if function == "Fn::Select":
                index, items = argument
                return self.value(items)[int(self.value(index))]
            if function == "Fn::GetAZs":
                return [f"{self.values['AWS::Region']}{zone}" for zone in "abc"]
            assert not function.startswith("Fn::"), f"the renderer does not know {function}"
        rendered = {key: self.value(value) for key, value in node.items()}
        return {key: value for key, value in rendered.items() if value is not NO_VALUE}


# Stand-in values for the exports the MWAA template imports, shaped like real ones (the static checks only).
FAKE_EXPORTS = {
    "kms-key-arn": "arn:aws:kms:eu-west-1:000000000000:key/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f",
    "mwaa-execution-role-arn": "arn:aws:iam::000000000000:role/medalflow-dev-mwaa-execution",
    "mwaa-source-bucket-arn": "arn:aws:s3:::medalflow-dev-mwaa-source-000000000000",
    "private-subnet-ids": "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
    "mwaa-security-group-ids": "sg-0123456789abcdef0",
}


def fake_import(name: str) -> str:
    return FAKE_EXPORTS[name.split("-", 2)[2]]


def render_mwaa_request(parameters: dict[str, str], imports: Callable[[str], str], region: str) -> dict[str, Any]:
    template = TEMPLATES["mwaa"]
    renderer = Renderer(template, parameters, imports, region=region, account="000000000000")
    return renderer.value(template["Resources"]["AirflowEnvironment"]["Properties"])


def enum_errors(value: Any, shape: Any, path: str = "") -> list[str]:
    """Values outside an enum of the botocore model (validate_parameters checks types, not enums)."""
    if shape.type_name == "structure":
        return [e for key, item in value.items() for e in enum_errors(item, shape.members[key], f"{path}.{key}")]
    if shape.type_name == "list":
        return [e for item in value for e in enum_errors(item, shape.member, path)]
    if shape.type_name == "string" and shape.enum and value not in shape.enum:
        return [f"{path}: {value!r} not in {shape.enum}"]
    return []


# --- the templates ----------------------------------------------------------------------------------------------------


def test_one_template_per_concern_all_named_in_the_creation_order() -> None:
    templates = [path.stem for path in INFRA.glob("*.y*ml") if not path.name.startswith(".")]
    assert sorted(templates) == sorted(STACK_ORDER)


@pytest.mark.parametrize("stem", STACK_ORDER)
def test_every_template_takes_project_environment_and_owner(stem: str) -> None:
    parameters = TEMPLATES[stem]["Parameters"]
    assert parameters["Project"]["Default"] == "medalflow"
    # No hyphen or underscore in the project name: it is valid in bucket names and in Glue database names.
    assert parameters["Project"]["AllowedPattern"] == "^[a-z][a-z0-9]{1,15}$"
    assert parameters["Environment"]["AllowedValues"] == ENVIRONMENTS
    assert "Default" not in parameters["Environment"]
    assert "Default" not in parameters["Owner"]
    assert TEMPLATES[stem]["Description"]


def test_every_named_resource_is_named_project_environment_component() -> None:
    for stem, logical_id, resource in resources():
        kind = resource["Type"]
        assert kind in NAMES or kind in UNNAMED, f"{stem}/{logical_id}: add {kind} to NAMES or UNNAMED"
        if kind in UNNAMED:
            continue
        path, pattern = NAMES[kind]
        name: Any = resource["Properties"]
        for key in path.split("."):
            name = name[key]
        assert set(name) == {"Fn::Sub"}, f"{stem}/{logical_id}: {path} is not derived with !Sub"
        assert re.fullmatch(pattern, name["Fn::Sub"]), f"{stem}/{logical_id}: {name['Fn::Sub']}"


def test_names_are_unique() -> None:
    names = [
        text(r["Properties"][NAMES[r["Type"]][0]]) for _, _, r in resources(*NAMES) if "." not in NAMES[r["Type"]][0]
    ]
    assert len(names) == len(set(names))


def test_mwaa_environment_is_named_as_the_role_and_the_log_groups_expect() -> None:
    (_, _, environment), *others = resources("AWS::MWAA::Environment")
    assert not others
    assert text(environment["Properties"]["Name"]) == ENVIRONMENT_NAME
    log_groups = sorted(text(r["Properties"]["LogGroupName"]) for _, _, r in resources("AWS::Logs::LogGroup"))
    assert log_groups == sorted(f"airflow-{ENVIRONMENT_NAME}-{component}" for component in LOG_COMPONENTS)
    assert set(environment["DependsOn"]) == {logical_id for _, logical_id, _ in resources("AWS::Logs::LogGroup")}, (
        "MWAA must find its log groups (retention, key) already there"
    )


def taggable(kind: str) -> bool:
    return "Tags" in PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", kind).schema["properties"]


def tags_of(resource: dict[str, Any]) -> dict[str, Any]:
    tags = resource["Properties"].get("Tags", {})
    return tags if isinstance(tags, dict) else {tag["Key"]: tag["Value"] for tag in tags}


def test_every_taggable_resource_has_the_six_tags() -> None:
    tagged = 0
    for stem, logical_id, resource in resources():
        if not taggable(resource["Type"]):
            continue
        tags = tags_of(resource)
        where = f"{stem}/{logical_id}"
        assert set(tags) >= TAG_KEYS, f"{where}: missing {TAG_KEYS - set(tags)}"
        assert tags["Project"] == {"Ref": "Project"}, where
        assert tags["Environment"] == {"Ref": "Environment"}, where
        assert tags["ManagedBy"] == "cloudformation", where
        assert tags["Owner"] == {"Ref": "Owner"}, where
        assert tags["Layer"] in LAYERS, where
        assert re.fullmatch(r"[a-z][a-z0-9-]*", tags["Component"]), where
        if resource["Type"].startswith("AWS::EC2::"):
            assert text(tags["Name"]).startswith("${Project}-${Environment}-"), where
        tagged += 1
    assert tagged >= 25


def test_glue_databases_carry_the_tags_as_parameters() -> None:
    """AWS::Glue::Database takes no Tags; the same facts go into the database's parameters."""
    for stem, logical_id, resource in resources("AWS::Glue::Database"):
        assert not taggable("AWS::Glue::Database")
        database = resource["Properties"]["DatabaseInput"]
        layer = text(database["Name"]).rsplit("_", 1)[1]
        assert database["Parameters"] == {
            "project": {"Ref": "Project"},
            "environment": {"Ref": "Environment"},
            "owner": {"Ref": "Owner"},
            "layer": layer,
            "managed_by": "cloudformation",
        }, f"{stem}/{logical_id}"


def exports() -> dict[str, str]:
    """Export name -> the template exporting it."""
    found: dict[str, str] = {}
    for stem, template in TEMPLATES.items():
        for output in template.get("Outputs", {}).values():
            if "Export" in output:
                name = text(output["Export"]["Name"])
                assert name not in found, f"{name} exported twice"
                found[name] = stem
    return found


def imports_of(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if set(node) == {"Fn::ImportValue"}:
            yield text(node["Fn::ImportValue"])
        for value in node.values():
            yield from imports_of(value)
    elif isinstance(node, list):
        for value in node:
            yield from imports_of(value)


def test_exports_are_named_project_environment_and_imports_follow_the_creation_order() -> None:
    exported = exports()
    for name in exported:
        assert re.fullmatch(r"\$\{Project\}-\$\{Environment\}-[a-z0-9-]+", name), name
    for position, stem in enumerate(STACK_ORDER):
        for name in imports_of(TEMPLATES[stem]):
            assert name in exported, f"{stem} imports {name}, which no template exports"
            assert STACK_ORDER.index(exported[name]) < position, f"{stem} imports {name} from a later stack"


def test_what_later_work_builds_on_is_exported() -> None:
    """A gold-only consumer role with Lake Formation grants, and alarms to the alert topic, are new templates."""
    exported = exports()
    for name in [
        "kms-key-arn",
        "alert-topic-arn",
        "lake-bucket-arn",
        "athena-results-bucket-arn",
        "mwaa-environment-name",
    ]:
        assert f"${{Project}}-${{Environment}}-{name}" in exported
    for layer in GLUE_DATABASES:
        assert f"${{Project}}-${{Environment}}-glue-database-{layer}" in exported


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_dbt_on_athena_uses_this_environments_glue_databases(environment: str) -> None:
    """dbt on Athena builds each layer in <MEDALFLOW_ATHENA_SCHEMA>_<layer> and reads the raw sources from
    <MEDALFLOW_ATHENA_SCHEMA>_raw (dbt_project/macros/generate_schema_name.sql, the sources' schema; what dbt sends is
    asserted by tests/dbt/test_athena.py): deploy's setting must name exactly the catalog's databases."""
    from medalflow_deploy.config import parse_env_file

    env_file = ROOT / "deploy" / f"{environment}.env"
    dbt_schema = parse_env_file(env_file.read_text(), str(env_file))["MEDALFLOW_ATHENA_SCHEMA"]
    parameters = stack_parameters(environment, "catalog")
    databases = {
        text(resource["Properties"]["DatabaseInput"]["Name"])
        .replace("${Project}", parameters["Project"])
        .replace("${Environment}", parameters["Environment"])
        for _stem, _logical_id, resource in resources("AWS::Glue::Database")
    }
    assert databases == {f"{dbt_schema}_{layer}" for layer in GLUE_DATABASES}


def strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield key
            yield from strings(value)
    elif isinstance(node, list):
        for value in node:
            yield from strings(value)


def test_no_account_id_no_hardcoded_partition_or_bucket() -> None:
    for path in sorted(INFRA.rglob("*")):
        if path.is_file():
            assert not re.search(r"(?<!\d)\d{12}(?!\d)", path.read_text()), f"an account id in {path}"
    for stem, template in TEMPLATES.items():
        for value in strings(template):
            assert "arn:aws:" not in value, f"{stem}: {value!r} (use ${{AWS::Partition}})"
            if "s3://" in value or "arn:${AWS::Partition}:s3:::" in value:
                assert "${" in value, f"{stem}: a literal bucket in {value!r}"


# --- storage ----------------------------------------------------------------------------------------------------------


def bucket_policy(bucket_logical_id: str) -> dict[str, Any]:
    (policy,) = [
        r for _, _, r in resources("AWS::S3::BucketPolicy") if r["Properties"]["Bucket"] == {"Ref": bucket_logical_id}
    ]
    return policy["Properties"]["PolicyDocument"]


def test_buckets_are_private_versioned_encrypted_logged_and_tls_only() -> None:
    buckets = dict((logical_id, r["Properties"]) for _, logical_id, r in resources("AWS::S3::Bucket"))
    assert set(buckets) == {"AccessLogsBucket", "MwaaSourceBucket", "LakeBucket", "AthenaResultsBucket"}
    for logical_id, bucket in buckets.items():
        assert bucket["PublicAccessBlockConfiguration"] == dict.fromkeys(
            ["BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"], True
        ), logical_id
        # Versioning: MWAA requires it of its source bucket; the others keep replaced objects for a while.
        assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}, logical_id
        assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}, logical_id
        assert any("NoncurrentVersionExpiration" in rule for rule in bucket["LifecycleConfiguration"]["Rules"])
        (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        if logical_id == "AccessLogsBucket":
            # S3 server access logging cannot deliver to an SSE-KMS bucket.
            assert encryption["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
            assert "LoggingConfiguration" not in bucket
        else:
            assert encryption == {
                "ServerSideEncryptionByDefault": {
                    "SSEAlgorithm": "aws:kms",
                    "KMSMasterKeyID": {"Fn::GetAtt": ["DataKey", "Arn"]},
                },
                "BucketKeyEnabled": True,
            }, logical_id
            assert bucket["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "AccessLogsBucket"}
        statements = {s["Sid"]: s for s in bucket_policy(logical_id)["Statement"]}
        assert statements["DenyInsecureTransport"]["Effect"] == "Deny"
        assert statements["DenyInsecureTransport"]["Principal"] == "*"
        assert statements["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
        assert statements["DenyTlsOlderThan12"]["Condition"] == {"NumericLessThan": {"s3:TlsVersion": "1.2"}}


def test_the_access_log_bucket_takes_deliveries_only_from_this_environment() -> None:
    statements = {s["Sid"]: s for s in bucket_policy("AccessLogsBucket")["Statement"]}
    server_logs = statements["S3ServerAccessLogsFromThisEnvironmentsBuckets"]
    buckets = {
        text(r["Properties"]["BucketName"])
        for _, logical_id, r in resources("AWS::S3::Bucket")
        if logical_id != "AccessLogsBucket"
    }
    sources = {
        arn.removeprefix("arn:${AWS::Partition}:s3:::")
        for arn in map(text, server_logs["Condition"]["ArnLike"]["aws:SourceArn"])
    }
    assert sources == buckets
    assert server_logs["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    for sid in ["VpcFlowLogsDelivery", "VpcFlowLogsAclCheck"]:
        assert statements[sid]["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_the_key_rotates_and_serves_only_this_environments_log_groups() -> None:
    key = TEMPLATES["storage"]["Resources"]["DataKey"]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["DeletionPolicy"] == "Retain"
    statements = {s["Sid"]: s for s in key["Properties"]["KeyPolicy"]["Statement"]}
    logs = statements["CloudWatchLogsForThisEnvironmentsAirflowLogGroups"]
    assert text(logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]).endswith(
        f":log-group:airflow-{'${Project}-${Environment}'}-*"
    )
    for statement in statements.values():
        assert statement["Principal"] != "*"


# --- the execution role -----------------------------------------------------------------------------------------------


def role_statements() -> list[dict[str, Any]]:
    role = TEMPLATES["execution-role"]["Resources"]["ExecutionRole"]["Properties"]
    return [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def actions_of(statement: dict[str, Any]) -> list[str]:
    return as_list(statement["Action"])


def resources_of(statement: dict[str, Any]) -> list[str]:
    return [text(r) for r in as_list(statement["Resource"])]


def statements_with(prefix: str) -> list[dict[str, Any]]:
    return [s for s in role_statements() if any(a.startswith(prefix) for a in actions_of(s))]


def test_the_role_allows_no_wildcard_action_and_no_wildcard_resource_on_data_services() -> None:
    for statement in role_statements():
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement
        assert "NotResource" not in statement
        for action in actions_of(statement):
            assert not action.endswith(":*"), f"{statement['Sid']}: {action}"  # nor "*", which has no colon
            assert ":" in action, f"{statement['Sid']}: {action}"
        if "*" in resources_of(statement):
            assert set(actions_of(statement)) <= RESOURCELESS_ACTIONS, statement["Sid"]
            assert resources_of(statement) == ["*"]
    for service in ["s3:", "secretsmanager:", "glue:", "athena:", "kms:", "sns:", "logs:", "airflow:"]:
        for statement in statements_with(service):
            if set(actions_of(statement)) <= RESOURCELESS_ACTIONS:
                continue
            for resource in resources_of(statement):
                assert "${AWS::AccountId}" in resource or "import(${Project}-${Environment}-" in resource, resource


def test_the_role_reads_only_this_environments_secrets() -> None:
    (statement,) = statements_with("secretsmanager:")
    assert actions_of(statement) == ["secretsmanager:GetSecretValue"]
    prefix = "arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:${Project}/${Environment}/"
    assert resources_of(statement) == [f"{prefix}connections/*", f"{prefix}variables/*"]


def test_the_role_touches_only_its_own_buckets_and_prefixes() -> None:
    allowed = {
        f"{env_import('mwaa-source-bucket-arn')}/{key}"
        for key in ["dags/*", "requirements.txt", "plugins.zip", "startup.sh"]
    } | {
        env_import("mwaa-source-bucket-arn"),
        f"{env_import('lake-bucket-arn')}/lake/*",
        f"{env_import('lake-bucket-arn')}/warehouse/*",
        env_import("lake-bucket-arn"),
        "import(${Project}-${Environment}-athena-results-bucket-arn)/${Project}-${Environment}-pipeline/*",
        env_import("athena-results-bucket-arn"),
        "*",
    }
    for statement in statements_with("s3:"):
        assert set(resources_of(statement)) <= allowed, statement["Sid"]
        if "s3:ListBucket" in actions_of(statement) and "lake-bucket" in resources_of(statement)[0]:
            assert statement["Condition"]["StringLike"]["s3:prefix"] == ["lake/*", "warehouse/*"]
        if any(a in actions_of(statement) for a in ["s3:PutObject", "s3:DeleteObject"]):
            assert all(r.endswith("/*") and "mwaa-source" not in r for r in resources_of(statement))


def test_the_role_uses_its_athena_workgroup_glue_databases_key_topic_queue_and_logs_only() -> None:
    (athena,) = statements_with("athena:")
    assert resources_of(athena) == [
        f"arn:${{AWS::Partition}}:athena:${{AWS::Region}}:${{AWS::AccountId}}:workgroup/{env_import('athena-workgroup-name')}"
    ]
    (glue,) = statements_with("glue:")
    glue_arn = "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}"
    layers = GLUE_DATABASES
    assert resources_of(glue) == [
        f"{glue_arn}:catalog",
        *(f"{glue_arn}:database/{env_import(f'glue-database-{layer}')}" for layer in layers),
        *(f"{glue_arn}:table/{env_import(f'glue-database-{layer}')}/*" for layer in layers),
    ]
    (kms,) = statements_with("kms:")
    assert resources_of(kms) == [env_import("kms-key-arn")]
    via = {text(v) for v in kms["Condition"]["StringLike"]["kms:ViaService"]}
    assert via == {
        "s3.${AWS::Region}.amazonaws.com",
        "sqs.${AWS::Region}.amazonaws.com",
        "sns.${AWS::Region}.amazonaws.com",
    }
    (sns,) = statements_with("sns:")
    assert actions_of(sns) == ["sns:Publish"]
    assert resources_of(sns) == [env_import("alert-topic-arn")]
    (sqs,) = statements_with("sqs:")
    assert resources_of(sqs) == ["arn:${AWS::Partition}:sqs:${AWS::Region}:*:airflow-celery-*"]
    (metrics,) = statements_with("airflow:")
    assert resources_of(metrics) == [
        f"arn:${{AWS::Partition}}:airflow:${{AWS::Region}}:${{AWS::AccountId}}:environment/{ENVIRONMENT_NAME}"
    ]
    for statement in statements_with("logs:"):
        if actions_of(statement) == ["logs:DescribeLogGroups"]:
            continue
        assert resources_of(statement) == [
            f"arn:${{AWS::Partition}}:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:airflow-{ENVIRONMENT_NAME}-*"
        ]
    (cloudwatch,) = statements_with("cloudwatch:")
    assert cloudwatch["Condition"] == {"StringEquals": {"cloudwatch:namespace": "AmazonMWAA"}}
    assert any("lakeformation:GetDataAccess" in actions_of(s) for s in role_statements())


def test_only_this_accounts_mwaa_environment_may_assume_the_role() -> None:
    role = TEMPLATES["execution-role"]["Resources"]["ExecutionRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": ["airflow.amazonaws.com", "airflow-env.amazonaws.com"]}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}
    assert text(trust["Condition"]["ArnLike"]["aws:SourceArn"]).endswith(f":environment/{ENVIRONMENT_NAME}")


# --- Athena -----------------------------------------------------------------------------------------------------------


def test_the_workgroup_enforces_encrypted_results_and_a_scan_limit() -> None:
    template = TEMPLATES["athena"]
    configuration = template["Resources"]["PipelineWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert configuration["EnforceWorkGroupConfiguration"] is True
    assert configuration["BytesScannedCutoffPerQuery"] == {"Ref": "BytesScannedCutoffPerQuery"}
    assert template["Parameters"]["BytesScannedCutoffPerQuery"]["MinValue"] == 10_000_000
    results = configuration["ResultConfiguration"]
    assert text(results["OutputLocation"]) == (
        "s3://import(${Project}-${Environment}-athena-results-bucket-name)/${Project}-${Environment}-pipeline/"
    )
    assert results["EncryptionConfiguration"]["EncryptionOption"] == "SSE_KMS"
    assert text(results["EncryptionConfiguration"]["KmsKey"]) == env_import("kms-key-arn")
    for environment in ENVIRONMENTS:
        assert int(stack_parameters(environment, "athena")["BytesScannedCutoffPerQuery"]) >= 10_000_000


# --- MWAA -------------------------------------------------------------------------------------------------------------


def mwaa_properties() -> dict[str, Any]:
    return TEMPLATES["mwaa"]["Resources"]["AirflowEnvironment"]["Properties"]


def test_mwaa_runs_the_projects_airflow_with_celery_workers_and_all_five_logs() -> None:
    parameters = TEMPLATES["mwaa"]["Parameters"]
    constraint = (ROOT / "requirements" / "requirements.txt").read_text().splitlines()[0]
    assert parameters["AirflowVersion"]["Default"] == "3.3.1"
    assert parameters["AirflowVersion"]["AllowedValues"] == ["3.3.1"]
    assert "constraints-3.3.1/" in constraint, "infra pins the Airflow that requirements.txt is constrained to"
    properties = mwaa_properties()
    for name in ["AirflowVersion", "EnvironmentClass", "MinWorkers", "MaxWorkers", "WebserverAccessMode"]:
        assert properties[name] == {"Ref": name}
    assert parameters["WebserverAccessMode"]["Default"] == "PRIVATE_ONLY"
    logging = properties["LoggingConfiguration"]
    assert set(logging) == {"DagProcessingLogs", "SchedulerLogs", "TaskLogs", "WebserverLogs", "WorkerLogs"}
    for log in logging.values():
        assert log["Enabled"] is True
        assert log["LogLevel"] in ({"Ref": "TaskLogLevel"}, {"Ref": "ComponentLogLevel"})
    for name in ["ExecutionRoleArn", "KmsKey", "SourceBucketArn"]:
        assert "Fn::ImportValue" in properties[name]
    assert properties["DagS3Path"] == "dags"


@pytest.mark.parametrize(
    ("kind", "key"), [("Requirements", "requirements.txt"), ("Plugins", "plugins.zip"), ("StartupScript", "startup.sh")]
)
def test_mwaa_pins_each_file_by_the_object_version_deploy_passes(kind: str, key: str) -> None:
    parameter = f"{kind}S3ObjectVersion"
    assert TEMPLATES["mwaa"]["Parameters"][parameter]["Default"] == ""
    properties = mwaa_properties()
    condition = properties[f"{kind}S3Path"]["Fn::If"][0]
    assert properties[f"{kind}S3Path"] == {"Fn::If": [condition, key, {"Ref": "AWS::NoValue"}]}
    assert properties[parameter] == {"Fn::If": [condition, {"Ref": parameter}, {"Ref": "AWS::NoValue"}]}
    for version, present in [("", False), ("3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY", True)]:
        request = render_mwaa_request({**stack_parameters("dev", "mwaa"), parameter: version}, fake_import, "eu-west-1")
        assert (request.get(f"{kind}S3Path"), request.get(parameter)) == ((key, version) if present else (None, None))


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_secrets_come_from_this_environments_prefixes_for_the_projects_ids_only(environment: str) -> None:
    request = render_mwaa_request(stack_parameters(environment, "mwaa"), fake_import, "eu-west-1")
    options = request["AirflowConfigurationOptions"]
    assert options["secrets.backend"] == "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"
    kwargs = json.loads(options["secrets.backend_kwargs"])
    assert kwargs == {
        "connections_prefix": f"medalflow/{environment}/connections",
        "connections_lookup_pattern": "^medalflow_",
        "variables_prefix": f"medalflow/{environment}/variables",
        "variables_lookup_pattern": "^medalflow_",
    }
    pattern = re.compile(kwargs["connections_lookup_pattern"])
    for conn_id in [settings.ERP_CONN_ID, settings.PARTNER_API_CONN_ID]:
        assert pattern.search(conn_id), conn_id
    # MWAA's aws_default is the execution role: never looked up in Secrets Manager.
    assert not pattern.search(settings.AWS_CONN_ID)


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_mwaa_environment_is_a_valid_create_environment_request(environment: str) -> None:
    """moto has no MWAA: the rendered properties are checked against botocore's model of CreateEnvironment."""
    model = botocore.session.get_session().get_service_model("mwaa").operation_model("CreateEnvironment")
    versions = {f"{kind}S3ObjectVersion": "v1" for kind in ["Requirements", "Plugins", "StartupScript"]}
    for overrides in [{}, versions]:
        request = render_mwaa_request({**stack_parameters(environment, "mwaa"), **overrides}, fake_import, "eu-west-1")
        validate_parameters(request, model.input_shape)  # unknown or missing names, types, lengths, ranges
        assert enum_errors(request, model.input_shape) == []
        assert request["MinWorkers"] <= request["MaxWorkers"]
        assert len(request["NetworkConfiguration"]["SubnetIds"]) == 2
    assert request["Name"] == f"medalflow-{environment}-airflow"
    # The template's choices are within the model's enums.
    parameters = TEMPLATES["mwaa"]["Parameters"]
    shapes = model.input_shape.members
    assert set(parameters["WebserverAccessMode"]["AllowedValues"]) <= set(shapes["WebserverAccessMode"].enum)
    level = shapes["LoggingConfiguration"].members["TaskLogs"].members["LogLevel"]
    assert set(parameters["TaskLogLevel"]["AllowedValues"]) <= set(level.enum)
    assert set(parameters["ComponentLogLevel"]["AllowedValues"]) <= set(level.enum)


# --- parameter files, suppressions, docs ------------------------------------------------------------------------------


def allowed(declaration: dict[str, Any], value: str) -> bool:
    if "AllowedValues" in declaration and str(value) not in map(str, declaration["AllowedValues"]):
        return False
    if "AllowedPattern" in declaration and not re.fullmatch(declaration["AllowedPattern"], str(value)):
        return False
    if declaration["Type"] == "Number":
        number = int(value)
        return declaration.get("MinValue", number) <= number <= declaration.get("MaxValue", number)
    return True


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_parameter_file_fits_every_template(environment: str) -> None:
    values = parameter_file(environment)
    assert set(values) == {"common", *STACK_ORDER}
    assert values["common"] == {"Project": "medalflow", "Environment": environment, "Owner": values["common"]["Owner"]}
    for stem in STACK_ORDER:
        declared = TEMPLATES[stem]["Parameters"]
        given = stack_parameters(environment, stem)
        assert set(given) <= set(declared), f"{stem}: unknown {set(given) - set(declared)}"
        missing = {name for name, d in declared.items() if "Default" not in d and name not in given}
        assert not missing, f"{stem}: no value for {missing}"
        for name, value in given.items():
            assert isinstance(value, str), (
                f"{environment}.json {stem}.{name}: a string, as --parameter-overrides passes"
            )
            assert allowed(declared[name], value), f"{environment}.json {stem}.{name}={value!r}"


def test_environments_do_not_share_address_ranges() -> None:
    ranges = [stack_parameters(environment, "network")["VpcCidr"] for environment in ENVIRONMENTS]
    assert len(set(ranges)) == len(ranges)


def suppressions() -> Iterator[tuple[str, str, str, str]]:
    """(template, where, tool, check id) for every suppression, template-wide or on a resource."""
    for stem, template in TEMPLATES.items():
        places = [("template", template.get("Metadata", {}))]
        places += [(logical_id, r.get("Metadata", {})) for logical_id, r in template["Resources"].items()]
        for where, metadata in places:
            for skip in metadata.get("checkov", {}).get("skip", []):
                assert len(skip.get("comment", "")) > 30, f"{stem}/{where}: checkov skip {skip['id']} without a reason"
                yield stem, where, "checkov", skip["id"]
            for check in metadata.get("cfn-lint", {}).get("config", {}).get("ignore_checks", []):
                yield stem, where, "cfn-lint", check


def test_every_suppression_is_on_its_resource_with_a_reason_and_in_the_readme() -> None:
    readme = (INFRA / "README.md").read_text()
    found = list(suppressions())
    assert found, "the README lists them; the test should see them"
    for stem, where, tool, check in found:
        if tool == "cfn-lint":
            # cfn-lint's metadata takes no comment field: the reason is the YAML comment naming the check.
            source = (INFRA / f"{stem}.yaml").read_text()
            assert re.search(rf"#\s*{check}\b.{{30,}}", source), f"{stem}/{where}: cfn-lint {check} without a reason"
        assert f"{stem}.yaml" in readme
        assert check in readme, f"infra/README.md does not list {tool} {check} ({stem})"
    # Nothing skipped wholesale: not in checkov's config, not in a cfn-lint config file.
    config = (INFRA / ".checkov.yaml").read_text()
    assert "skip-check" not in config
    assert "soft-fail" not in config
    assert not list(ROOT.glob(".cfnlintrc*"))
    assert not list(INFRA.glob(".cfnlintrc*"))


def test_the_readme_lists_every_export_and_output() -> None:
    readme = (INFRA / "README.md").read_text()
    for name in exports():
        assert name.replace("${Project}-${Environment}-", "<project>-<env>-") in readme, name
    for stem, template in TEMPLATES.items():
        for output in template.get("Outputs", {}):
            assert f"`{output}`" in readme, f"{stem} output {output}"
    for stem in STACK_ORDER:
        assert f"infra/{stem}.yaml" in readme


# --- deployed to moto -------------------------------------------------------------------------------------------------

REGION = "us-east-1"  # moto's CloudFormation answers Fn::GetAZs "" with us-east-1's zones
# What moto's CloudFormation (moto 5.2) does not do, and the API call CloudFormation's own provider makes instead; the
# test makes that call from the template's rendered properties. test_moto_still_lacks_what_the_test_provides checks
# the list against moto's model map, so a moto upgrade that closes a gap shows up.
MOTO_MISSING_TYPES = {
    "AWS::Glue::Database",
    "AWS::Athena::WorkGroup",
    "AWS::S3::BucketPolicy",
    "AWS::SNS::TopicPolicy",
    "AWS::SNS::Subscription",
    "AWS::EC2::SecurityGroupEgress",
    "AWS::MWAA::Environment",
    "AWS::CloudWatch::Alarm",
    "AWS::LakeFormation::Tag",
    "AWS::LakeFormation::TagAssociation",
    "AWS::LakeFormation::PrincipalPermissions",
}
# Properties moto's model of a supported type ignores or misreads, applied through the API after the stack.
MOTO_IGNORED_PROPERTIES = {
    "AWS::S3::Bucket": ["VersioningConfiguration", "PublicAccessBlockConfiguration", "OwnershipControls"],
    "AWS::KMS::Key": ["Tags"],  # moto reads CloudFormation's Key/Value tags as TagKey/TagValue and fails
    "AWS::SNS::Topic": ["Tags"],  # moto stores them as an attribute, not as tags
}
# Not deployed by the `deployed` fixture. mwaa is not deployable on moto at all: validated statically (above) and
# against botocore's model with moto's real exports. monitoring imports the mwaa stack's environment name: `monitored`
# deploys it after a stand-in stack exporting that name.
NOT_ON_MOTO = {"mwaa", "monitoring"}


def test_moto_still_lacks_what_the_test_provides() -> None:
    from moto.cloudformation.parsing import get_model_map

    supported = set(get_model_map())
    assert not MOTO_MISSING_TYPES & supported, "moto now supports these: let its CloudFormation create them"
    used = {r["Type"] for _, _, r in resources()}
    assert used - supported <= MOTO_MISSING_TYPES


class Moto:
    """The templates deployed in order to the session's moto server, under a project name of their own."""

    def __init__(self, endpoint: str) -> None:
        self.project = f"mf{uuid.uuid4().hex[:8]}"
        self.session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=REGION)
        self.endpoint = endpoint
        self.cloudformation = self.client("cloudformation")
        self.account = self.client("sts").get_caller_identity()["Account"]
        self.outputs: dict[str, dict[str, str]] = {}

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint)

    def parameters(self, stem: str) -> dict[str, str]:
        return {**stack_parameters("dev", stem), "Project": self.project}

    def exports(self) -> dict[str, str]:
        found = self.cloudformation.list_exports()["Exports"]
        return {export["Name"]: export["Value"] for export in found}

    def renderer(self, stem: str) -> Renderer:
        exported = self.exports()
        return Renderer(TEMPLATES[stem], self.parameters(stem), exported.__getitem__, REGION, self.account)

    def deploy(self, stem: str) -> None:
        """One stack: what moto lacks provided around it, the rest created by moto's CloudFormation."""
        template = TEMPLATES[stem]
        renderer = self.renderer(stem)
        missing = {
            logical_id
            for logical_id, resource in template["Resources"].items()
            if resource["Type"] in MOTO_MISSING_TYPES and renderer.active(resource)
        }
        # Those referring to nothing in the stack are provided first, so moto's stack can refer to them.
        before = {
            logical_id
            for logical_id in missing
            if not references(template["Resources"][logical_id]) & set(template["Resources"])
        }
        for logical_id in sorted(before):
            renderer.physical[logical_id] = self.provide(template["Resources"][logical_id], renderer)
        body = moto_template(
            template,
            drop={k for k, r in template["Resources"].items() if r["Type"] in MOTO_MISSING_TYPES},
            known=renderer.physical,
        )
        name = f"{self.project}-dev-{stem}"
        self.cloudformation.create_stack(
            StackName=name,
            TemplateBody=json.dumps(body),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in self.parameters(stem).items()],
            Capabilities=["CAPABILITY_NAMED_IAM"],
        )
        (stack,) = self.cloudformation.describe_stacks(StackName=name)["Stacks"]
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
        self.outputs[stem] = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        created = self.cloudformation.list_stack_resources(StackName=name)["StackResourceSummaries"]
        for summary in created:
            if summary["LogicalResourceId"]:
                renderer.physical[summary["LogicalResourceId"]] = summary["PhysicalResourceId"]
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] == "AWS::S3::Bucket" and logical_id in renderer.physical:
                renderer.attributes[f"{logical_id}.Arn"] = f"arn:aws:s3:::{renderer.physical[logical_id]}"
            if resource["Type"] == "AWS::IAM::Role" and logical_id in renderer.physical:
                role = self.client("iam").get_role(RoleName=renderer.physical[logical_id])["Role"]
                renderer.attributes[f"{logical_id}.Arn"] = role["Arn"]
        for logical_id in sorted(missing - before):
            self.provide(template["Resources"][logical_id], renderer)
        for logical_id, resource in template["Resources"].items():
            if resource["Type"] in MOTO_IGNORED_PROPERTIES and logical_id in renderer.physical:
                self.apply_ignored(resource, renderer.physical[logical_id], renderer)

    def provide(self, resource: dict[str, Any], renderer: Renderer) -> str:
        """What CloudFormation's provider of this type calls; returns the physical id."""
        kind = resource["Type"]
        properties = renderer.value(resource["Properties"])
        if kind == "AWS::Glue::Database":
            self.client("glue").create_database(
                CatalogId=properties["CatalogId"], DatabaseInput=properties["DatabaseInput"]
            )
            return properties["DatabaseInput"]["Name"]
        if kind == "AWS::Athena::WorkGroup":
            assert properties["State"] == "ENABLED"
            self.client("athena").create_work_group(
                Name=properties["Name"],
                Description=properties["Description"],
                Configuration=properties["WorkGroupConfiguration"],
                Tags=properties["Tags"],
            )
            return properties["Name"]
        if kind == "AWS::S3::BucketPolicy":
            self.client("s3").put_bucket_policy(
                Bucket=properties["Bucket"], Policy=json.dumps(properties["PolicyDocument"])
            )
            return properties["Bucket"]
        if kind == "AWS::SNS::TopicPolicy":
            for topic in properties["Topics"]:
                self.client("sns").set_topic_attributes(
                    TopicArn=topic, AttributeName="Policy", AttributeValue=json.dumps(properties["PolicyDocument"])
                )
            return properties["Topics"][0]
        if kind == "AWS::EC2::SecurityGroupEgress":
            pair = {"GroupId": properties["DestinationSecurityGroupId"], "Description": properties["Description"]}
            self.client("ec2").authorize_security_group_egress(
                GroupId=properties["GroupId"],
                IpPermissions=[{"IpProtocol": properties["IpProtocol"], "UserIdGroupPairs": [pair]}],
            )
            return properties["GroupId"]
        if kind == "AWS::CloudWatch::Alarm":
            # CloudFormation's alarm properties are PutMetricAlarm's parameters.
            self.client("cloudwatch").put_metric_alarm(**properties)
            return properties["AlarmName"]
        lakeformation = self.client("lakeformation")
        if kind == "AWS::LakeFormation::Tag":
            lakeformation.create_lf_tag(**properties)
            return properties["TagKey"]
        if kind == "AWS::LakeFormation::TagAssociation":
            lakeformation.add_lf_tags_to_resource(Resource=properties["Resource"], LFTags=properties["LFTags"])
            return json.dumps(properties["Resource"], sort_keys=True)
        if kind == "AWS::LakeFormation::PrincipalPermissions":
            lakeformation.grant_permissions(
                Principal=properties["Principal"],
                Resource=properties["Resource"],
                Permissions=properties["Permissions"],
                PermissionsWithGrantOption=properties["PermissionsWithGrantOption"],
            )
            return json.dumps([properties["Principal"], properties["Resource"]], sort_keys=True)
        raise AssertionError(f"no stand-in for {kind}")

    def apply_ignored(self, resource: dict[str, Any], physical_id: str, renderer: Renderer) -> None:
        names = MOTO_IGNORED_PROPERTIES[resource["Type"]]
        properties = {name: renderer.value(resource["Properties"][name]) for name in names}
        if resource["Type"] == "AWS::S3::Bucket":
            s3 = self.client("s3")
            s3.put_bucket_versioning(Bucket=physical_id, VersioningConfiguration=properties["VersioningConfiguration"])
            s3.put_public_access_block(
                Bucket=physical_id, PublicAccessBlockConfiguration=properties["PublicAccessBlockConfiguration"]
            )
            s3.put_bucket_ownership_controls(Bucket=physical_id, OwnershipControls=properties["OwnershipControls"])
        elif resource["Type"] == "AWS::KMS::Key":
            tags = [{"TagKey": t["Key"], "TagValue": t["Value"]} for t in properties["Tags"]]
            self.client("kms").tag_resource(KeyId=physical_id, Tags=tags)
        elif resource["Type"] == "AWS::SNS::Topic":
            self.client("sns").tag_resource(ResourceArn=physical_id, Tags=properties["Tags"])


def references(node: Any) -> set[str]:
    """Logical ids (and parameters) a node refers to through Ref, GetAtt or Sub."""
    if isinstance(node, list):
        return set().union(*(references(x) for x in node)) if node else set()
    if not isinstance(node, dict):
        return set()
    found: set[str] = set()
    for key, value in node.items():
        if key == "Ref":
            found.add(value)
        elif key == "Fn::GetAtt":
            found.add(value[0])
        elif key == "Fn::Sub":
            template = value if isinstance(value, str) else value[0]
            found |= {name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", template)}
            if not isinstance(value, str):
                found |= references(value[1])
        else:
            found |= references(value)
    return found


def moto_template(template: dict[str, Any], drop: set[str], known: dict[str, str]) -> dict[str, Any]:
    """The template moto runs: without the resources the test provides, references to provided ones resolved."""

    def resolve(node: Any) -> Any:
        if isinstance(node, list):
            return [resolve(x) for x in node]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Ref"} and node["Ref"] in known:
            return known[node["Ref"]]
        assert not (set(node) == {"Ref"} and node["Ref"] in drop), f"moto's stack refers to {node['Ref']}"
        return {key: resolve(value) for key, value in node.items()}

    body = copy.deepcopy(template)
    body["Resources"] = {k: r for k, r in body["Resources"].items() if k not in drop}
    for resource in body["Resources"].values():
        if resource["Type"] == "AWS::KMS::Key":
            resource["Properties"].pop("Tags")  # moto's key model fails on them; applied once the key exists
        if "DependsOn" in resource:
            resource["DependsOn"] = [d for d in as_list(resource["DependsOn"]) if d not in drop]
    return resolve(body)


@pytest.fixture(scope="module")
def deployed(moto_endpoint: str) -> Moto:
    deployment = Moto(moto_endpoint)
    for stem in STACK_ORDER:
        if stem not in NOT_ON_MOTO:
            deployment.deploy(stem)
    return deployment


def tag_dict(tags: list[dict[str, str]], key: str = "Key", value: str = "Value") -> dict[str, str]:
    """Tags as a dict, without the aws:cloudformation:* tags CloudFormation adds itself."""
    return {tag[key]: tag[value] for tag in tags if not tag[key].startswith("aws:")}


def expected_tags(deployed: Moto, layer: str, component: str) -> dict[str, str]:
    return {
        "Project": deployed.project,
        "Environment": "dev",
        "ManagedBy": "cloudformation",
        "Owner": "data-platform",
        "Layer": layer,
        "Component": component,
    }


@pytest.mark.integration
def test_on_moto_every_export_is_there(deployed: Moto) -> None:
    exported = deployed.exports()
    for name, stem in exports().items():
        if stem not in NOT_ON_MOTO:
            assert name.replace("${Project}-${Environment}-", f"{deployed.project}-dev-") in exported, name


@pytest.mark.integration
def test_on_moto_the_buckets_are_encrypted_versioned_private_tagged_and_tls_only(deployed: Moto) -> None:
    s3 = deployed.client("s3")
    key_arn = deployed.outputs["storage"]["KmsKeyArn"]
    components = {"access-logs": "none", "mwaa-source": "none", "lake": "all", "athena-results": "all"}
    for component, layer in components.items():
        bucket = f"{deployed.project}-dev-{component}-{deployed.account}"
        (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        default = rule["ApplyServerSideEncryptionByDefault"]
        if component == "access-logs":
            assert default == {"SSEAlgorithm": "AES256"}
        else:
            assert default == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key_arn}
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert set(block.values()) == {True}
        assert len(block) == 4
        assert tag_dict(s3.get_bucket_tagging(Bucket=bucket)["TagSet"]) == expected_tags(deployed, layer, component)
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        (deny,) = [s for s in policy["Statement"] if s["Sid"] == "DenyInsecureTransport"]
        assert deny["Resource"] == [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"]
    assert deployed.outputs["storage"]["LakeUri"] == f"s3://{deployed.project}-dev-lake-{deployed.account}/lake"


@pytest.mark.integration
def test_on_moto_the_key_rotates_and_is_tagged(deployed: Moto) -> None:
    kms = deployed.client("kms")
    key_arn = deployed.outputs["storage"]["KmsKeyArn"]
    assert kms.get_key_rotation_status(KeyId=key_arn)["KeyRotationEnabled"] is True
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    assert aliases[f"alias/{deployed.project}-dev-kms"] == key_arn.rsplit("/", 1)[1]
    tags = tag_dict(kms.list_resource_tags(KeyId=key_arn)["Tags"], "TagKey", "TagValue")
    assert tags == expected_tags(deployed, "all", "kms")


@pytest.mark.integration
def test_on_moto_the_alert_topic_is_encrypted_tagged_and_tls_only(deployed: Moto) -> None:
    sns = deployed.client("sns")
    topic = deployed.outputs["alerts"]["AlertTopicArn"]
    assert topic == f"arn:aws:sns:{REGION}:{deployed.account}:{deployed.project}-dev-alerts"
    attributes = sns.get_topic_attributes(TopicArn=topic)["Attributes"]
    assert attributes["KmsMasterKeyId"] == deployed.outputs["storage"]["KmsKeyArn"]
    policy = json.loads(attributes["Policy"])
    assert {s["Sid"] for s in policy["Statement"]} == {"DenyInsecureTransport", "CloudWatchAlarmsOfThisAccount"}
    assert tag_dict(sns.list_tags_for_resource(ResourceArn=topic)["Tags"]) == expected_tags(deployed, "all", "alerts")
    # dev subscribes no address: the subscription's condition is off.
    assert sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"] == []


@pytest.mark.integration
def test_on_moto_the_glue_databases_are_located_in_the_lake(deployed: Moto) -> None:
    glue = deployed.client("glue")
    lake = f"{deployed.project}-dev-lake-{deployed.account}"
    for layer in GLUE_DATABASES:
        database = glue.get_database(Name=f"{deployed.project}_dev_{layer}")["Database"]
        expected = (
            f"s3://{lake}/lake/raw/" if layer == "raw" else f"s3://{lake}/warehouse/{deployed.project}_dev_{layer}/"
        )
        assert database["LocationUri"] == expected
        assert database["Parameters"]["layer"] == layer
        assert deployed.outputs["catalog"][f"{layer.title()}DatabaseName"] == f"{deployed.project}_dev_{layer}"


@pytest.mark.integration
def test_on_moto_the_workgroup_enforces_its_encrypted_results_and_scan_limit(deployed: Moto) -> None:
    athena = deployed.client("athena")
    name = f"{deployed.project}-dev-pipeline"
    assert deployed.outputs["athena"]["WorkGroupName"] == name
    configuration = athena.get_work_group(WorkGroup=name)["WorkGroup"]["Configuration"]
    assert configuration["EnforceWorkGroupConfiguration"] is True
    assert configuration["BytesScannedCutoffPerQuery"] == int(
        stack_parameters("dev", "athena")["BytesScannedCutoffPerQuery"]
    )
    results = configuration["ResultConfiguration"]
    location = f"s3://{deployed.project}-dev-athena-results-{deployed.account}/{name}/"
    assert results["OutputLocation"] == location == deployed.outputs["athena"]["ResultsLocation"]
    assert results["EncryptionConfiguration"] == {
        "EncryptionOption": "SSE_KMS",
        "KmsKey": deployed.outputs["storage"]["KmsKeyArn"],
    }
    arn = f"arn:aws:athena:{REGION}:{deployed.account}:workgroup/{name}"
    assert tag_dict(athena.list_tags_for_resource(ResourceARN=arn)["Tags"]) == expected_tags(
        deployed, "all", "pipeline"
    )


def role_policy(deployed: Moto, name: str) -> dict[str, Any]:
    document = deployed.client("iam").get_role_policy(
        RoleName=f"{deployed.project}-dev-mwaa-execution", PolicyName=name
    )
    document = document["PolicyDocument"]
    if isinstance(document, dict):
        return document
    # moto's CloudFormation keeps an inline policy as a Python dict, and its API then answers with the dict's repr.
    return ast.literal_eval(document)


@pytest.mark.integration
def test_on_moto_the_role_policies_are_valid_scoped_and_within_iams_size_limit(deployed: Moto) -> None:
    iam = deployed.client("iam")
    role_name = f"{deployed.project}-dev-mwaa-execution"
    role = iam.get_role(RoleName=role_name)["Role"]
    assert role["Arn"] == deployed.outputs["execution-role"]["ExecutionRoleArn"]
    assert tag_dict(role["Tags"]) == expected_tags(deployed, "all", "mwaa-execution")
    trust = role["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    (statement,) = trust["Statement"]
    assert statement["Condition"]["ArnLike"]["aws:SourceArn"] == (
        f"arn:aws:airflow:{REGION}:{deployed.account}:environment/{deployed.project}-dev-airflow"
    )
    names = iam.list_role_policies(RoleName=role_name)["PolicyNames"]
    assert sorted(names) == ["alerts", "mwaa-runtime", "pipeline-data", "secrets"]
    size = 0
    for name in names:
        document = role_policy(deployed, name)
        # Again through IAM's API, which moto validates (its CloudFormation path does not).
        iam.put_role_policy(RoleName=role_name, PolicyName=name, PolicyDocument=json.dumps(document))
        size += len(json.dumps(document, separators=(",", ":")))
        for s in document["Statement"]:
            for resource in as_list(s["Resource"]):
                # This project's buckets, or this account and region's ARNs (s3 ARNs carry neither), or the queue.
                scoped = deployed.project in resource or f":{REGION}:{deployed.account}:" in resource
                assert resource == "*" or scoped or resource == f"arn:aws:sqs:{REGION}:*:airflow-celery-*", resource
    assert size <= 10_240, "IAM allows 10,240 characters of inline policy per role"
    secrets = role_policy(deployed, "secrets")
    prefix = f"arn:aws:secretsmanager:{REGION}:{deployed.account}:secret:{deployed.project}/dev/"
    assert secrets["Statement"][0]["Resource"] == [f"{prefix}connections/*", f"{prefix}variables/*"]


@pytest.mark.integration
def test_on_moto_the_network_has_two_private_subnets_in_two_zones_behind_nat(deployed: Moto) -> None:
    ec2 = deployed.client("ec2")
    outputs = deployed.outputs["network"]
    subnet_ids = outputs["PrivateSubnetIds"].split(",")
    subnets = ec2.describe_subnets(SubnetIds=subnet_ids)["Subnets"]
    assert len({s["AvailabilityZone"] for s in subnets}) == 2
    assert {s["VpcId"] for s in subnets} == {outputs["VpcId"]}
    assert not any(s["MapPublicIpOnLaunch"] for s in subnets)
    # The route tables by their default route (moto reports neither their subnet associations nor their tags).
    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [outputs["VpcId"]]}])["RouteTables"]
    defaults = [[r for r in t["Routes"] if r.get("DestinationCidrBlock") == "0.0.0.0/0"] for t in tables]
    private = [table for table, routes in zip(tables, defaults, strict=True) if routes and "NatGatewayId" in routes[0]]
    public = [
        table for table, routes in zip(tables, defaults, strict=True) if routes and "NatGatewayId" not in routes[0]
    ]
    assert len(private) == 2
    assert len(public) == 1
    assert all(any(r.get("GatewayId", "").startswith("vpce-") for r in t["Routes"]) for t in private), "S3 by endpoint"
    (nat,) = ec2.describe_nat_gateways(Filters=[{"Name": "vpc-id", "Values": [outputs["VpcId"]]}])["NatGateways"]
    assert nat["SubnetId"] not in subnet_ids, "the NAT gateway sits in a public subnet"
    (group,) = ec2.describe_security_groups(GroupIds=outputs["MwaaSecurityGroupIds"].split(","))["SecurityGroups"]
    assert group["GroupName"] == f"{deployed.project}-dev-mwaa"
    assert [p["UserIdGroupPairs"][0]["GroupId"] for p in group["IpPermissions"]] == [group["GroupId"]]
    assert any(p.get("UserIdGroupPairs") for p in group["IpPermissionsEgress"])
    (vpc,) = ec2.describe_vpcs(VpcIds=[outputs["VpcId"]])["Vpcs"]
    assert tag_dict(vpc["Tags"]) == {**expected_tags(deployed, "none", "vpc"), "Name": f"{deployed.project}-dev-vpc"}
    flow_filter = [{"Name": "resource-id", "Values": [outputs["VpcId"]]}]
    (flow_log,) = ec2.describe_flow_logs(Filters=flow_filter)["FlowLogs"]
    assert flow_log["LogDestination"] == f"arn:aws:s3:::{deployed.project}-dev-access-logs-{deployed.account}"
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [outputs["VpcId"]]}])["VpcEndpoints"]
    assert [e["ServiceName"] for e in endpoints] == [f"com.amazonaws.{REGION}.s3"]


@pytest.mark.integration
def test_on_moto_the_mwaa_request_from_the_real_exports_is_valid(deployed: Moto) -> None:
    """The MWAA stack is the one moto cannot run: its imports resolved from moto's exports, its request checked."""
    exported = deployed.exports()
    request = render_mwaa_request(deployed.parameters("mwaa"), exported.__getitem__, REGION)
    model = botocore.session.get_session().get_service_model("mwaa").operation_model("CreateEnvironment")
    validate_parameters(request, model.input_shape)
    assert request["ExecutionRoleArn"] == deployed.outputs["execution-role"]["ExecutionRoleArn"]
    assert request["SourceBucketArn"] == deployed.outputs["storage"]["MwaaSourceBucketArn"]
    assert request["KmsKey"] == deployed.outputs["storage"]["KmsKeyArn"]
    assert request["NetworkConfiguration"]["SubnetIds"] == deployed.outputs["network"]["PrivateSubnetIds"].split(",")
    # The environment's log groups are the ones the role may write and the key may encrypt.
    (logs,) = [s for s in role_policy(deployed, "mwaa-runtime")["Statement"] if s["Sid"] == "WriteTheEnvironmentsLogs"]
    for component in LOG_COMPONENTS:
        group = f"airflow-{request['Name']}-{component}"
        assert re.fullmatch(
            logs["Resource"].replace("*", ".*"), f"arn:aws:logs:{REGION}:{deployed.account}:log-group:{group}"
        )


# --- monitoring (issue 14): alarms to the alert topic, the operational dashboard ------------------------------------

# The metrics the alarms and the dashboard use, as MWAA and Athena publish them (namespace -> metric -> dimension
# names): MWAA's Airflow metrics in CloudWatch (its user guide, "Apache Airflow metrics available in CloudWatch", and
# the dashboard template there); Athena's query metrics of a workgroup with PublishCloudWatchMetricsEnabled.
PUBLISHED_METRICS = {
    "AmazonMWAA": {
        "DAGDurationFailed": {"DAG", "Environment"},
        "DAGDurationSuccess": {"DAG", "Environment"},
        "SchedulerHeartbeat": {"Function", "Environment"},
        "QueuedTasks": {"Function", "Environment"},
        "RunningTasks": {"Function", "Environment"},
        "TotalParseTime": {"Function", "Environment"},
        "ImportErrors": {"Function", "Environment"},
    },
    "AWS/Athena": {"ProcessedBytes": {"WorkGroup"}, "TotalExecutionTime": {"WorkGroup"}},
}
# MWAA's Function dimension value for each metric published with one.
FUNCTION_OF = {
    "SchedulerHeartbeat": "Scheduler",
    "QueuedTasks": "Executor",
    "RunningTasks": "Executor",
    "TotalParseTime": "DAG Processing",
    "ImportErrors": "DAG Processing",
}
ALARMS = {
    "dag-failed",
    "run-too-long",
    "scheduler-heartbeat",
    "tasks-queued-too-long",
    "athena-bytes-over-budget",
}
ALERT_TOPIC = {"Fn::ImportValue": {"Fn::Sub": "${Project}-${Environment}-alert-topic-arn"}}
MONITORING_IMPORTS = {
    "mwaa-environment-name": "medalflow-dev-airflow",
    "athena-workgroup-name": "medalflow-dev-pipeline",
    "alert-topic-arn": "arn:aws:sns:eu-west-1:000000000000:medalflow-dev-alerts",
}


def alarms() -> dict[str, dict[str, Any]]:
    """Alarm name suffix -> the alarm's properties."""
    found = {}
    for _stem, _logical_id, resource in resources("AWS::CloudWatch::Alarm"):
        name = text(resource["Properties"]["AlarmName"]).removeprefix("${Project}-${Environment}-")
        found[name] = resource["Properties"]
    return found


def metric_stats(properties: dict[str, Any]) -> list[dict[str, Any]]:
    """Every metric an alarm reads: its own, or each MetricStat of its metric math."""
    if "MetricName" in properties:
        return [
            {"Namespace": properties["Namespace"], "MetricName": properties["MetricName"], **properties}
            | {"Dimensions": properties["Dimensions"]}
        ]
    return [query["MetricStat"]["Metric"] for query in properties["Metrics"] if "MetricStat" in query]


def test_monitoring_has_the_five_alarms_of_issue_14_all_in_its_template() -> None:
    assert set(alarms()) == ALARMS
    assert {stem for stem, _, _ in resources("AWS::CloudWatch::Alarm", "AWS::CloudWatch::Dashboard")} == {"monitoring"}


def test_every_alarm_notifies_the_alert_topic_when_it_fires_and_when_it_clears() -> None:
    for name, properties in alarms().items():
        assert properties["ActionsEnabled"] is True, name
        assert properties["AlarmActions"] == [ALERT_TOPIC], name
        assert properties["OKActions"] == [ALERT_TOPIC], name
        assert "docs/operations.md" in text(properties["AlarmDescription"]), (
            f"{name}: the description names the runbook"
        )


def test_every_alarm_threshold_and_window_comes_from_a_parameter_file() -> None:
    parameters = TEMPLATES["monitoring"]["Parameters"]
    for name, properties in alarms().items():
        threshold = properties["Threshold"]
        assert set(threshold) == {"Ref"}, f"{name}: Threshold {threshold}"
        assert threshold["Ref"] in parameters, f"{name}: Threshold {threshold}"
        for environment in ENVIRONMENTS:
            assert threshold["Ref"] in parameter_file(environment)["monitoring"], f"{environment}.json: {name}"
        for key in ["EvaluationPeriods", "DatapointsToAlarm"]:
            value = properties[key]
            assert value == 1 or (set(value) == {"Ref"} and value["Ref"] in parameters), f"{name}: {key}"
    # Stricter where it matters: production's run and scan budgets are at least the others'.
    dev, prod = (parameter_file(env)["monitoring"] for env in ["dev", "prod"])
    assert int(prod["MaxRunMinutes"]) >= int(dev["MaxRunMinutes"])
    assert int(prod["AthenaDailyBudgetGiB"]) >= int(dev["AthenaDailyBudgetGiB"])


def test_alarms_watch_metrics_by_the_names_and_dimensions_mwaa_and_athena_publish() -> None:
    found = alarms()
    for name, properties in found.items():
        for metric in metric_stats(properties):
            namespace, metric_name = metric["Namespace"], metric["MetricName"]
            dimensions = {d["Name"]: d["Value"] for d in metric["Dimensions"]}
            assert metric_name in PUBLISHED_METRICS[namespace], f"{name}: {namespace}/{metric_name}"
            assert set(dimensions) == PUBLISHED_METRICS[namespace][metric_name], f"{name}: {metric_name}"
            if "Function" in dimensions:
                assert dimensions["Function"] == FUNCTION_OF[metric_name], name
            if "Environment" in dimensions:
                assert dimensions["Environment"] == {
                    "Fn::ImportValue": {"Fn::Sub": "${Project}-${Environment}-mwaa-environment-name"}
                }, name
            if "WorkGroup" in dimensions:
                assert dimensions["WorkGroup"] == {
                    "Fn::ImportValue": {"Fn::Sub": "${Project}-${Environment}-athena-workgroup-name"}
                }, name
    # The any-DAG alarm counts failed runs over every DAG of this environment with a Metrics Insights query.
    (query,) = [q for q in found["dag-failed"]["Metrics"] if q.get("ReturnData")]
    expression = text(query["Expression"])
    assert re.fullmatch(
        r"SELECT COUNT\(DAGDurationFailed\) FROM SCHEMA\(AmazonMWAA, DAG, Environment\)\s+"
        r"WHERE Environment = 'import\(\$\{Project\}-\$\{Environment\}-mwaa-environment-name\)'\s*",
        expression,
    ), expression
    assert query["Period"] == 300
    # Durations are milliseconds, bytes are bytes: the math turns them into the parameters' minutes and GiB.
    (minutes,) = [q for q in found["run-too-long"]["Metrics"] if q.get("ReturnData")]
    assert minutes["Expression"] == "MAX([succeeded, failed]) / 60000"
    (gib,) = [q for q in found["athena-bytes-over-budget"]["Metrics"] if q.get("ReturnData")]
    assert gib["Expression"] == "processed_bytes / 1073741824"
    for properties in found.values():
        if "Metrics" in properties:
            assert sum(bool(q.get("ReturnData", True)) for q in properties["Metrics"]) == 1


def test_missing_data_is_breaching_only_for_the_scheduler_heartbeat() -> None:
    """A silent scheduler publishes nothing: for it no data is the failure. Elsewhere no data means nothing happened
    (no failed run, no queued task, no query)."""
    for name, properties in alarms().items():
        expected = "breaching" if name == "scheduler-heartbeat" else "notBreaching"
        assert properties["TreatMissingData"] == expected, name
    heartbeat = alarms()["scheduler-heartbeat"]
    assert heartbeat["ComparisonOperator"] == "LessThanThreshold"
    assert heartbeat["Statistic"] == "Sum"
    assert alarms()["tasks-queued-too-long"]["Statistic"] == "Minimum", "the queue never drained in the period"


def render_monitoring(environment: str, imports: Callable[[str], str] | None = None) -> Renderer:
    def fake(name: str) -> str:
        return MONITORING_IMPORTS[name.split("-", 2)[2]]

    return Renderer(
        TEMPLATES["monitoring"], stack_parameters(environment, "monitoring"), imports or fake, "eu-west-1", "0" * 12
    )


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_every_alarm_is_a_valid_put_metric_alarm_request(environment: str) -> None:
    renderer = render_monitoring(environment)
    model = botocore.session.get_session().get_service_model("cloudwatch").operation_model("PutMetricAlarm")
    for _stem, logical_id, resource in resources("AWS::CloudWatch::Alarm"):
        request = renderer.value(resource["Properties"])
        validate_parameters(request, model.input_shape)
        assert not enum_errors(request, model.input_shape), logical_id
        assert request["Threshold"] == int(
            stack_parameters(environment, "monitoring")[resource["Properties"]["Threshold"]["Ref"]]
        )
        # CloudWatch's limits: a day at most per period, periods over an hour in whole hours, at most a day evaluated.
        for period in [request.get("Period")] + [
            q.get("Period", q.get("MetricStat", {}).get("Period")) for q in request.get("Metrics", [])
        ]:
            if period is not None:
                assert period in (60, 300, 3600) or (period % 3600 == 0 and period <= 86400), logical_id
        longest = max(
            [request.get("Period", 0)]
            + [q.get("MetricStat", {}).get("Period", q.get("Period", 0)) for q in request.get("Metrics", [])]
        )
        assert longest * request["EvaluationPeriods"] <= 86400, logical_id


def dashboard_body(renderer: Renderer) -> dict[str, Any]:
    (dashboard,) = [r for _, _, r in resources("AWS::CloudWatch::Dashboard")]
    return json.loads(renderer.value(dashboard["Properties"]["DashboardBody"]))


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_the_dashboard_shows_every_alarm_and_the_signals_they_watch(environment: str) -> None:
    renderer = render_monitoring(environment)
    body = dashboard_body(renderer)
    widgets = body["widgets"]
    (alarm_widget,) = [w for w in widgets if w["type"] == "alarm"]
    prefix = f"arn:aws:cloudwatch:eu-west-1:{'0' * 12}:alarm:medalflow-{environment}-"
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(prefix + name for name in ALARMS)
    graphed: set[str] = set()
    for widget in widgets:
        assert {"x", "y", "width", "height"} <= set(widget)
        assert widget["x"] + widget["width"] <= 24
        if widget["type"] != "metric":
            continue
        assert widget["properties"]["region"] == "eu-west-1"
        for line in widget["properties"]["metrics"]:
            if isinstance(line[0], dict):  # an expression
                continue
            namespace, metric_name, *rest = line
            dimensions = dict(zip(rest[0:-1:2], rest[1::2], strict=False)) if rest else {}
            dimensions = {k: v for k, v in dimensions.items() if isinstance(k, str)}
            assert set(dimensions) == PUBLISHED_METRICS[namespace][metric_name], metric_name
            assert dimensions.get("Environment", "medalflow-dev-airflow") == "medalflow-dev-airflow"
            if "Function" in dimensions:
                assert dimensions["Function"] == FUNCTION_OF[metric_name]
            graphed.add(metric_name)
    watched = {m["MetricName"] for properties in alarms().values() for m in metric_stats(properties)}
    assert watched <= graphed | {"DAGDurationFailed"}, watched - graphed


def test_every_alarm_has_a_runbook_entry() -> None:
    operations = (ROOT / "docs" / "operations.md").read_text()
    assert "## Is my pipeline healthy?" in operations
    for name in ALARMS:
        entry = re.search(rf"^#### `<project>-<env>-{re.escape(name)}`\n(.+?)(?=^#|\Z)", operations, re.M | re.S)
        assert entry, f"docs/operations.md: no runbook entry for {name}"
        for part in ["**Means**", "**Check**", "**Do**"]:
            assert part in entry.group(1), f"{name}: the runbook entry lacks {part}"


@pytest.fixture(scope="module")
def monitored(deployed: Moto) -> Moto:
    """The monitoring stack on moto, after a stand-in for the mwaa stack (moto cannot create the environment) that
    exports the environment's name as the real stack does."""
    name = f"{deployed.project}-dev-airflow"
    stand_in = {
        "Resources": {
            "EnvironmentName": {
                "Type": "AWS::SSM::Parameter",
                "Properties": {"Name": f"/{name}/environment-name", "Type": "String", "Value": name},
            }
        },
        "Outputs": {
            "EnvironmentName": {"Value": name, "Export": {"Name": f"{deployed.project}-dev-mwaa-environment-name"}}
        },
    }
    deployed.cloudformation.create_stack(StackName=f"{deployed.project}-dev-mwaa", TemplateBody=json.dumps(stand_in))
    deployed.deploy("monitoring")
    return deployed


@pytest.mark.integration
def test_on_moto_the_alarms_notify_the_real_alert_topic_and_the_dashboard_is_there(monitored: Moto) -> None:
    cloudwatch = monitored.client("cloudwatch")
    prefix = f"{monitored.project}-dev-"
    found = {a["AlarmName"]: a for a in cloudwatch.describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]}
    assert set(found) == {prefix + name for name in ALARMS}
    topic = monitored.outputs["alerts"]["AlertTopicArn"]
    workgroup = monitored.outputs["athena"]["WorkGroupName"]
    for alarm in found.values():
        assert alarm["AlarmActions"] == [topic], alarm["AlarmName"]
        assert alarm["OKActions"] == [topic], alarm["AlarmName"]
        tags = cloudwatch.list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]
        assert tag_dict(tags) == expected_tags(monitored, tag_dict(tags)["Layer"], "monitoring")
    heartbeat = found[prefix + "scheduler-heartbeat"]
    assert {d["Name"]: d["Value"] for d in heartbeat["Dimensions"]} == {
        "Function": "Scheduler",
        "Environment": f"{monitored.project}-dev-airflow",
    }
    assert heartbeat["Threshold"] == 1
    assert heartbeat["EvaluationPeriods"] == 2
    (processed,) = [q for q in found[prefix + "athena-bytes-over-budget"]["Metrics"] if "MetricStat" in q]
    assert processed["MetricStat"]["Metric"]["Dimensions"] == [{"Name": "WorkGroup", "Value": workgroup}]
    assert found[prefix + "athena-bytes-over-budget"]["Threshold"] == 20
    dashboard = cloudwatch.get_dashboard(DashboardName=monitored.outputs["monitoring"]["DashboardName"])
    body = json.loads(dashboard["DashboardBody"])
    (alarm_widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    assert sorted(alarm_widget["properties"]["alarms"]) == sorted(a["AlarmArn"] for a in found.values())
    assert monitored.outputs["monitoring"]["AlarmNamePrefix"] == f"{monitored.project}-dev"


# --- governance (issue 12): Lake Formation tags, the gold-only consumer, OpenLineage on MWAA -------------------------

QUERYING = {
    "athena:StartQueryExecution",
    "athena:StopQueryExecution",
    "s3:PutObject",
    "s3:AbortMultipartUpload",
    "kms:GenerateDataKey",
}
LAYER_CLASSIFICATION = {"raw": "restricted", "bronze": "restricted", "silver": "confidential", "gold": "internal"}


def consumer_statements() -> list[dict[str, Any]]:
    role = TEMPLATES["governance"]["Resources"]["ConsumerRole"]["Properties"]
    return [s for policy in role["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def lake_formation_grants(principal: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        resource["Properties"]
        for _, _, resource in resources("AWS::LakeFormation::PrincipalPermissions")
        if resource["Properties"]["Principal"]["DataLakePrincipalIdentifier"] == principal
    ]


def tag_key(node: Any) -> str:
    """A tag key as written: the literal, or the key of the tag resource it refers to (!If [CreateTags, !Ref ...])."""
    if isinstance(node, dict) and "Fn::If" in node:
        _condition, reference, literal = node["Fn::If"]
        declared = TEMPLATES["governance"]["Resources"][reference["Ref"]]["Properties"]["TagKey"]
        assert declared == literal, f"{reference['Ref']} is {declared}, the fallback {literal}"
        return literal
    return node


def test_the_consumer_role_reads_gold_and_nothing_else() -> None:
    statements = consumer_statements()
    gold, lake, results = (
        env_import(n) for n in ("glue-database-gold", "lake-bucket-arn", "athena-results-bucket-arn")
    )
    glue_arn = "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}"
    allowed = {
        "arn:${AWS::Partition}:athena:${AWS::Region}:${AWS::AccountId}:workgroup/${Project}-${Environment}-consumer",
        f"{glue_arn}:catalog",
        f"{glue_arn}:database/{gold}",
        f"{glue_arn}:table/{gold}/*",
        f"{lake}/warehouse/{gold}/*",
        lake,
        f"{results}/${{Project}}-${{Environment}}-consumer/*",
        results,
        env_import("kms-key-arn"),
        "*",
    }
    for statement in statements:
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement
        assert "NotResource" not in statement
        assert all(":" in a and not a.endswith("*") for a in actions_of(statement)), statement["Sid"]
        assert set(resources_of(statement)) <= allowed, statement["Sid"]
        if "*" in resources_of(statement):
            assert actions_of(statement) == ["lakeformation:GetDataAccess"]
        # Reads, except running its own queries and writing their results.
        for action in actions_of(statement):
            assert action.split(":")[1].startswith(("Get", "List", "Decrypt")) or action in QUERYING, action
    text_of_policy = json.dumps([resources_of(s) for s in statements])
    for other in ["raw", "bronze", "silver"]:
        assert f"glue-database-{other}" not in text_of_policy
    assert "pipeline" not in text_of_policy, "not the pipeline's workgroup nor its results"
    (listing,) = [s for s in statements if s["Sid"] == "ListGoldDataOnly"]
    assert text(listing["Condition"]["StringLike"]["s3:prefix"]) == f"warehouse/{gold}/*"
    writes = [s for s in statements if any(a in actions_of(s) for a in ("s3:PutObject", "s3:DeleteObject"))]
    assert [resources_of(s) for s in writes] == [[f"{results}/${{Project}}-${{Environment}}-consumer/*"]]


def test_lake_formation_grants_the_consumer_gold_only() -> None:
    grants = lake_formation_grants({"Fn::GetAtt": ["ConsumerRole", "Arn"]})
    assert len(grants) == 2
    for grant in grants:
        assert grant["PermissionsWithGrantOption"] == []
        assert set(grant["Permissions"]) <= {"SELECT", "DESCRIBE"}
    (database,) = [g["Resource"]["Database"] for g in grants if "Database" in g["Resource"]]
    assert text(database["Name"]) == env_import("glue-database-gold")
    (policy,) = [g["Resource"]["LFTagPolicy"] for g in grants if "LFTagPolicy" in g["Resource"]]
    assert policy["ResourceType"] == "TABLE"
    assert [(tag_key(e["TagKey"]), e["TagValues"]) for e in policy["Expression"]] == [("medalflow_layer", ["gold"])]
    # The pipeline may pass SELECT on gold on (dbt-athena's lf_grants), on nothing else.
    pipeline = lake_formation_grants(
        {"Fn::ImportValue": {"Fn::Sub": "${Project}-${Environment}-mwaa-execution-role-arn"}}
    )
    with_grant_option = [g for g in pipeline if g["PermissionsWithGrantOption"]]
    assert [g["Resource"]["LFTagPolicy"]["Expression"][0]["TagValues"] for g in with_grant_option] == [["gold"]]


def test_lake_formation_tags_hold_every_tag_the_dbt_project_sets() -> None:
    """The tags dbt-athena's lf_tags_config sets (the models' yml) exist in infra/governance.yaml, and each layer
    database carries its layer and classification."""
    declared = {
        r["Properties"]["TagKey"]: set(r["Properties"]["TagValues"]) for _, _, r in resources("AWS::LakeFormation::Tag")
    }
    manifest = json.loads((settings.get_settings().dbt_project_dir / "target" / "manifest.json").read_text())
    used: dict[str, set[str]] = {}
    for node in manifest["nodes"].values():
        lf_tags = node["config"].get("lf_tags_config") if node["resource_type"] in ("model", "snapshot") else None
        if not lf_tags:
            continue
        for key, value in lf_tags["tags"].items():
            used.setdefault(key, set()).add(value)
        for key, columns_by_value in (lf_tags.get("tags_columns") or {}).items():
            used.setdefault(key, set()).update(columns_by_value)
    assert set(used) == {"medalflow_layer", "medalflow_classification", "medalflow_domain", "medalflow_pii_type"}
    for key, values in used.items():
        assert values <= declared[key], f"{key}: {values - declared[key]} not declared in infra/governance.yaml"
    assert "Core Domain" in used["medalflow_domain"]
    associations = {
        text(r["Properties"]["Resource"]["Database"]["Name"]): {
            tag_key(t["TagKey"]): t["TagValues"] for t in r["Properties"]["LFTags"]
        }
        for _, _, r in resources("AWS::LakeFormation::TagAssociation")
    }
    assert associations == {
        env_import(f"glue-database-{layer}"): {"medalflow_layer": [layer], "medalflow_classification": [c]}
        for layer, c in LAYER_CLASSIFICATION.items()
    }


@pytest.mark.parametrize(
    ("overrides", "transport"),
    [
        ({}, None),
        (
            {"LineageTransport": "amazon_datazone_api", "LineageDataZoneDomainId": "dzd_abc123"},
            {"type": "amazon_datazone_api", "domainId": "dzd_abc123", "region": "eu-west-1"},
        ),
        (
            {"LineageTransport": "http", "LineageHttpUrl": "https://marquez.internal:5000"},
            {"type": "http", "url": "https://marquez.internal:5000", "endpoint": "api/v1/lineage"},
        ),
    ],
)
def test_mwaa_sends_openlineage_where_the_parameters_say(overrides: dict[str, str], transport: Any) -> None:
    request = render_mwaa_request({**stack_parameters("dev", "mwaa"), **overrides}, fake_import, "eu-west-1")
    options = request["AirflowConfigurationOptions"]
    validate_parameters(request, botocore.session.get_session().get_service_model("mwaa").operation_model(
        "CreateEnvironment").input_shape)  # fmt: skip
    if transport is None:
        assert not any(name.startswith("openlineage.") for name in options), "no transport: no lineage, no calls out"
        return
    assert json.loads(options["openlineage.transport"]) == transport
    assert options["openlineage.namespace"] == "medalflow-dev"
    assert options["openlineage.extractors"] == "medalflow.governance.openlineage.ExtractionTaskExtractor"
    from medalflow.governance.openlineage import ExtractionTaskExtractor

    assert (
        ExtractionTaskExtractor.__module__ + "." + ExtractionTaskExtractor.__name__ == options["openlineage.extractors"]
    )
    rules = TEMPLATES["mwaa"]["Rules"]["LineageTransportHasItsTarget"]["Assertions"]
    assert len(rules) == 2, "a transport without its domain or URL is refused before MWAA sees it"


@pytest.mark.integration
def test_on_moto_the_consumer_is_granted_gold_only_and_its_policy_is_valid(deployed: Moto) -> None:
    iam, lakeformation = deployed.client("iam"), deployed.client("lakeformation")
    consumer = deployed.outputs["governance"]["ConsumerRoleArn"]
    assert consumer.endswith(f":role/{deployed.project}-dev-gold-consumer")
    role = iam.get_role(RoleName=f"{deployed.project}-dev-gold-consumer")["Role"]
    assert tag_dict(role["Tags"]) == expected_tags(deployed, "gold", "consumer")
    (name,) = iam.list_role_policies(RoleName=role["RoleName"])["PolicyNames"]
    document = iam.get_role_policy(RoleName=role["RoleName"], PolicyName=name)["PolicyDocument"]
    document = document if isinstance(document, dict) else ast.literal_eval(document)
    iam.put_role_policy(RoleName=role["RoleName"], PolicyName=name, PolicyDocument=json.dumps(document))
    flat = json.dumps(document)
    assert f"{deployed.project}_dev_gold" in flat
    for other in ["raw", "bronze", "silver"]:
        assert f"{deployed.project}_dev_{other}" not in flat
    # Lake Formation lists by principal only together with a resource: every grant, then the consumer's.
    granted = lakeformation.list_permissions()["PrincipalResourcePermissions"]
    resources_granted = [p["Resource"] for p in granted if p["Principal"]["DataLakePrincipalIdentifier"] == consumer]
    assert len(resources_granted) == 2
    assert {"Database": {"CatalogId": deployed.account, "Name": f"{deployed.project}_dev_gold"}} in resources_granted
    (policy,) = [r["LFTagPolicy"] for r in resources_granted if "LFTagPolicy" in r]
    assert policy["Expression"] == [{"TagKey": "medalflow_layer", "TagValues": ["gold"]}]
    tags = {t["TagKey"]: t["TagValues"] for t in lakeformation.list_lf_tags()["LFTags"]}
    assert tags["medalflow_layer"] == ["raw", "bronze", "silver", "gold"]
    assert "Core Domain" in tags["medalflow_domain"]
    gold_tags = lakeformation.get_resource_lf_tags(Resource={"Database": {"Name": f"{deployed.project}_dev_gold"}})
    assert {t["TagKey"]: t["TagValues"] for t in gold_tags["LFTagOnDatabase"]} == {
        "medalflow_layer": ["gold"],
        "medalflow_classification": ["internal"],
    }
    attached = iam.list_attached_role_policies(RoleName=f"{deployed.project}-dev-mwaa-execution")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == [f"{deployed.project}-dev-pipeline-governance"]


def test_mwaa_keeps_airflows_statsd_metrics_on_for_the_alarms() -> None:
    """MWAA forwards Airflow's StatsD metrics to CloudWatch and honours only statsd_on and the allow/block lists of the
    metrics section: the environment states statsd_on and filters nothing the alarms read."""
    options = mwaa_properties()["AirflowConfigurationOptions"]
    assert options["metrics.statsd_on"] == "True"
    assert not {key for key in options if key.startswith("metrics.") and key.endswith(("allow_list", "block_list"))}
