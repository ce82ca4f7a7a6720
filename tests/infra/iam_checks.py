"""Walks CloudFormation templates for IAM policy documents and checks them."""

from __future__ import annotations

# Actions AWS documents as not supporting resource-level permissions: a "*" resource is the
# only valid form for them. Anything else with Resource "*" fails the test.
NO_RESOURCE_LEVEL_ACTIONS = {
    "ecr:GetAuthorizationToken",
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
}

POLICY_CARRIERS = {
    "AWS::IAM::Role": lambda p: [pol["PolicyDocument"] for pol in p.get("Policies", [])],
    "AWS::IAM::Policy": lambda p: [p["PolicyDocument"]],
    "AWS::IAM::ManagedPolicy": lambda p: [p["PolicyDocument"]],
    "AWS::S3::BucketPolicy": lambda p: [p["PolicyDocument"]],
    "AWS::SNS::TopicPolicy": lambda p: [p["PolicyDocument"]],
    "AWS::SQS::QueuePolicy": lambda p: [p["PolicyDocument"]],
    "AWS::KMS::Key": lambda p: [p["KeyPolicy"]],
    "AWS::SecretsManager::ResourcePolicy": lambda p: [p["ResourcePolicy"]],
}


def as_list(x):
    return x if isinstance(x, list) else [x]


def statements(doc: dict) -> list[dict]:
    return as_list(doc.get("Statement", []))


def policy_documents(template: dict):
    """(logical id, document) for every policy document in the template."""
    for lid, res in template.get("Resources", {}).items():
        get = POLICY_CARRIERS.get(res.get("Type"))
        if get:
            for doc in get(res.get("Properties", {})):
                yield lid, doc


def wildcard_problems(doc: dict) -> list[str]:
    problems = []
    for st in statements(doc):
        if "NotAction" in st or "NotResource" in st:
            problems.append(f"NotAction/NotResource in {st.get('Sid')}")
        actions = as_list(st.get("Action", []))
        for a in actions:
            if not isinstance(a, str) or a == "*" or a.endswith(":*"):
                problems.append(f"wildcard action {a!r}")
        for r in as_list(st.get("Resource", [])):
            if r == "*":
                bad = [a for a in actions if a not in NO_RESOURCE_LEVEL_ACTIONS]
                if bad:
                    problems.append(f"Resource '*' for actions that support resource ARNs: {bad}")
    return problems
