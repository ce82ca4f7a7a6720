"""Security properties of the CloudFormation templates that checkov checks only for Terraform,
plus the listener/target-group design of the service."""

from __future__ import annotations

import pytest

from conftest import CONTRACT_HEALTH_PATH, CONTRACT_PORT, CONTRACT_STOP_TIMEOUT, TEMPLATES, resources_of_type
from iam_checks import policy_documents, statements, wildcard_problems


def the(template: dict, type_name: str) -> tuple[str, dict]:
    found = resources_of_type(template, type_name)
    assert len(found) == 1, f"expected one {type_name}, got {list(found)}"
    return next(iter(found.items()))


def service_task_def(templates) -> tuple[str, dict]:
    """The service's task definition (service.yaml also holds the one-off migration task's)."""
    return "TaskDefinition", templates["service"]["Resources"]["TaskDefinition"]


def test_every_template_has_parameters_outputs_and_exports(templates):
    for name in TEMPLATES:
        t = templates[name]
        assert t.get("Parameters"), name
        assert t.get("Outputs"), name
    for name in ("network", "identity", "database", "service"):
        assert any("Export" in o for o in templates[name]["Outputs"].values()), name


def test_imports_are_exported_by_an_earlier_stack(templates):
    """Cross-stack references resolve in the documented order."""
    order = ["network", "identity", "database", "service", "observability"]
    exported: set[str] = set()
    import json, re
    for name in order:
        t = templates[name]
        for imp in re.findall(r'"Fn::ImportValue": \{"Fn::Sub": "\$\{EnvironmentName\}-([A-Za-z]+)"\}', json.dumps(t)):
            assert imp in exported, f"{name}.yaml imports {imp} before any stack exports it"
        for out in t["Outputs"].values():
            if "Export" in out:
                exported.add(out["Export"]["Name"]["Fn::Sub"].replace("${EnvironmentName}-", ""))


def test_read_only_root_filesystem(templates):
    tds = resources_of_type(templates["service"], "AWS::ECS::TaskDefinition")
    assert set(tds) == {"TaskDefinition", "MigrationTaskDefinition"}
    for c in [c for td in tds.values() for c in td["Properties"]["ContainerDefinitions"]]:
        assert c["ReadonlyRootFilesystem"] is True, c["Name"]
        assert c.get("Privileged", False) is False
        assert c["LinuxParameters"]["Capabilities"]["Drop"] == ["ALL"]
        assert int(c["User"]) != 0


def test_separate_execution_and_task_roles(templates):
    svc = templates["service"]
    _, td = service_task_def(templates)
    p = td["Properties"]
    exe, task = p["ExecutionRoleArn"]["Fn::GetAtt"][0], p["TaskRoleArn"]["Fn::GetAtt"][0]
    assert exe != task
    roles = resources_of_type(svc, "AWS::IAM::Role")
    exe_actions = {a for doc in [x["PolicyDocument"] for x in roles[exe]["Properties"]["Policies"]]
                   for st in statements(doc) for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}
    task_actions = {a for doc in [x["PolicyDocument"] for x in roles[task]["Properties"]["Policies"]]
                    for st in statements(doc) for a in (st["Action"] if isinstance(st["Action"], list) else [st["Action"]])}
    assert not [a for a in exe_actions if a.startswith("secretsmanager:")], "execution role must not read secrets"
    assert not [a for a in task_actions if a.startswith(("ecr:", "logs:"))], "task role must not pull images or write logs"
    for role in (roles[exe], roles[task]):
        assert "ManagedPolicyArns" not in role["Properties"], "scope roles with inline policies on exact ARNs"


def test_no_public_ip(templates):
    _, svc = the(templates["service"], "AWS::ECS::Service")
    vpc = svc["Properties"]["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert vpc["AssignPublicIp"] == "DISABLED"
    assert "PrivateSubnetIds" in str(vpc["Subnets"])
    for lid, sub in resources_of_type(templates["network"], "AWS::EC2::Subnet").items():
        assert sub["Properties"]["MapPublicIpOnLaunch"] is False, lid
    _, db = the(templates["database"], "AWS::RDS::DBInstance")
    assert db["Properties"]["PubliclyAccessible"] is False


def test_alb_deletion_protection_and_hardening(templates):
    _, alb = the(templates["service"], "AWS::ElasticLoadBalancingV2::LoadBalancer")
    attrs = {a["Key"]: a["Value"] for a in alb["Properties"]["LoadBalancerAttributes"]}
    assert attrs["deletion_protection.enabled"] == "true"
    assert attrs["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attrs["access_logs.s3.enabled"] == "true"


def test_rds_deletion_protection_encryption_tls(templates):
    db_t = templates["database"]
    _, db = the(db_t, "AWS::RDS::DBInstance")
    p = db["Properties"]
    assert p["DeletionProtection"] is True
    assert db["DeletionPolicy"] == "Snapshot" and db["UpdateReplacePolicy"] == "Snapshot"
    assert p["StorageEncrypted"] is True
    assert p["ManageMasterUserPassword"] is True
    assert "MasterUserPassword" not in p
    assert p["BackupRetentionPeriod"]
    _, pg = the(db_t, "AWS::RDS::DBParameterGroup")
    assert pg["Properties"]["Parameters"]["rds.force_ssl"] == "1"


def test_no_wildcard_action_or_resource_in_any_policy(templates):
    seen = 0
    for name, t in templates.items():
        for lid, doc in policy_documents(t):
            seen += 1
            assert not wildcard_problems(doc), f"{name}.yaml {lid}: {wildcard_problems(doc)}"
    assert seen >= 4, "policy walker found too few policies"


def test_wildcard_checker_can_fail():
    assert wildcard_problems({"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "arn:aws:s3:::b"}]})
    assert wildcard_problems({"Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b"}]})
    assert wildcard_problems({"Statement": [{"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]})
    assert not wildcard_problems({"Statement": [{"Effect": "Allow", "Action": "ecr:GetAuthorizationToken", "Resource": "*"}]})


def secret_reads(templates) -> dict[tuple[str, str], list]:
    """(template, role) -> the Resource list of every secretsmanager statement of that role."""
    out: dict[tuple[str, str], list] = {}
    for name, t in templates.items():
        for lid, doc in policy_documents(t):
            for s in statements(doc):
                acts = s["Action"] if isinstance(s["Action"], list) else [s["Action"]]
                if any(str(a).startswith("secretsmanager:") for a in acts):
                    assert s["Effect"] == "Allow"
                    assert acts == ["secretsmanager:GetSecretValue"] or s["Action"] == "secretsmanager:GetSecretValue", (name, lid)
                    res = s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]]
                    out.setdefault((name, lid), []).extend(res)
    return out


APP_SECRET = {"Fn::ImportValue": {"Fn::Sub": "${EnvironmentName}-DbAppSecretArn"}}
OWNER_SECRET = {"Fn::ImportValue": {"Fn::Sub": "${EnvironmentName}-DbSecretArn"}}


def test_service_reads_only_the_runtime_role_secret(templates):
    """The service logs in as the DML-only runtime role, never as the RDS master user."""
    _, td = service_task_def(templates)
    task_role = td["Properties"]["TaskRoleArn"]["Fn::GetAtt"][0]
    reads = secret_reads(templates)
    # The owner's secret only while upgrading a stack that ran as the master user (not the default).
    assert templates["service"]["Parameters"]["ServiceDbSecret"]["Default"] == "runtime"
    either = {"Fn::If": ["ServiceAsOwner", OWNER_SECRET, APP_SECRET]}
    assert reads[("service", task_role)] == [either]
    env = {e["Name"]: e["Value"] for c in td["Properties"]["ContainerDefinitions"] if c["Name"] == "players-api"
           for e in c["Environment"]}
    assert env["DB_SECRET_ARN"] == either
    outs = templates["database"]["Outputs"]
    assert outs["DbAppSecretArn"]["Value"] == {"Ref": "AppUserSecret"}
    assert outs["DbSecretArn"]["Value"] == {"Fn::GetAtt": ["Database", "MasterUserSecret.SecretArn"]}
    # Who may read which secret: the service the runtime one; the migration task the owner's
    # (and the runtime one, to create the role with its password); the proxy the runtime one.
    assert reads == {
        ("service", task_role): [either],
        ("service", "MigrationTaskRole"): [OWNER_SECRET, APP_SECRET],
        ("database", "ProxyRole"): [{"Ref": "AppUserSecret"}],
    }


def test_security_groups(templates):
    net = templates["network"]
    sgs = resources_of_type(net, "AWS::EC2::SecurityGroup")
    ingress = resources_of_type(net, "AWS::EC2::SecurityGroupIngress")
    # Task SG: no inline ingress; one ingress rule, on the container port, from the ALB SG only.
    assert "SecurityGroupIngress" not in sgs["TaskSecurityGroup"]["Properties"]
    task_in = [r["Properties"] for r in ingress.values() if r["Properties"]["GroupId"] == {"Ref": "TaskSecurityGroup"}]
    assert len(task_in) == 1
    assert task_in[0]["SourceSecurityGroupId"] == {"Ref": "AlbSecurityGroup"}
    assert task_in[0]["FromPort"] == task_in[0]["ToPort"] == {"Ref": "ContainerPort"}
    assert net["Parameters"]["ContainerPort"]["Default"] == CONTRACT_PORT
    # DB SG: 5432 from the task SG (inline), the proxy and the rotation function (separate rules) only.
    db_sg = templates["database"]["Resources"]["DbSecurityGroup"]
    rules = db_sg["Properties"]["SecurityGroupIngress"]
    assert len(rules) == 1 and rules[0]["FromPort"] == rules[0]["ToPort"] == 5432
    assert "TaskSecurityGroupId" in str(rules[0]["SourceSecurityGroupId"])
    db_in = [r["Properties"] for r in resources_of_type(templates["database"], "AWS::EC2::SecurityGroupIngress").values()
             if r["Properties"]["GroupId"] == {"Ref": "DbSecurityGroup"}]
    assert sorted(r["SourceSecurityGroupId"]["Ref"] for r in db_in) == ["ProxySecurityGroup", "RotationSecurityGroup"]
    assert all(r["FromPort"] == r["ToPort"] == 5432 for r in db_in)
    # Every rule has a description and a protocol other than -1.
    for name, t in templates.items():
        for lid, res in t["Resources"].items():
            typ = res["Type"]
            rules = []
            if typ == "AWS::EC2::SecurityGroup":
                rules = res["Properties"].get("SecurityGroupIngress", []) + res["Properties"].get("SecurityGroupEgress", [])
            elif typ in ("AWS::EC2::SecurityGroupIngress", "AWS::EC2::SecurityGroupEgress"):
                rules = [res["Properties"]]
            for r in rules:
                assert r.get("Description"), f"{name}:{lid} rule without description"
                assert str(r["IpProtocol"]) != "-1", f"{name}:{lid}"


def test_listeners_tls_redirect_and_auth_rules(templates):
    svc = templates["service"]
    listeners = resources_of_type(svc, "AWS::ElasticLoadBalancingV2::Listener")
    https = listeners["HttpsListener"]["Properties"]
    assert https["Protocol"] == "HTTPS" and https["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
    http = listeners["HttpListener"]["Properties"]
    assert http["DefaultActions"][0]["Type"] == "redirect"
    assert http["DefaultActions"][0]["RedirectConfig"]["Protocol"] == "HTTPS"
    # Default: authenticate (cognito or oidc), then forward.
    auth, fwd = https["DefaultActions"]
    cognito, oidc = auth["Fn::If"][1], auth["Fn::If"][2]
    assert cognito["Type"] == "authenticate-cognito" and oidc["Type"] == "authenticate-oidc"
    assert "{{resolve:secretsmanager:" in oidc["AuthenticateOidcConfig"]["ClientSecret"]["Fn::Sub"]
    assert fwd["Type"] == "forward" and fwd["Order"] > cognito["Order"]
    rules = resources_of_type(svc, "AWS::ElasticLoadBalancingV2::ListenerRule")
    # Bearer rule: header condition; jwt-validation (optional) then forward.
    bearer = rules["BearerRule"]["Properties"]
    cond = bearer["Conditions"][0]
    assert cond["Field"] == "http-header"
    assert cond["HttpHeaderConfig"] == {"HttpHeaderName": "Authorization", "Values": ["Bearer *"]}
    with_jwt, without = bearer["Actions"]["Fn::If"][1], bearer["Actions"]["Fn::If"][2]
    assert [a["Type"] for a in with_jwt] == ["jwt-validation", "forward"]
    assert [a["Type"] for a in without] == ["forward"]
    # Public paths are forwarded without authentication and win over the Bearer rule.
    public = rules["PublicPathsRule"]["Properties"]
    assert CONTRACT_HEALTH_PATH in public["Conditions"][0]["PathPatternConfig"]["Values"]
    assert "/logout" in public["Conditions"][0]["PathPatternConfig"]["Values"]
    assert [a["Type"] for a in public["Actions"]] == ["forward"]
    assert public["Priority"] < bearer["Priority"]
    # The IdP's post-logout landing is answered by the ALB and is not /logout (no loop).
    assert rules["LoggedOutRule"]["Properties"]["Actions"][0]["Type"] == "fixed-response"
    assert svc["Parameters"]["LogoutLandingPath"]["Default"] == templates["identity"]["Parameters"]["LogoutLandingPath"]["Default"] != "/logout"


def test_target_group_and_service_deployment(templates):
    svc = templates["service"]
    _, tg = the(svc, "AWS::ElasticLoadBalancingV2::TargetGroup")
    p = tg["Properties"]
    assert p["TargetType"] == "ip" and p["Port"] == CONTRACT_PORT
    assert p["HealthCheckPath"] == CONTRACT_HEALTH_PATH
    attrs = {a["Key"]: a["Value"] for a in p["TargetGroupAttributes"]}
    assert int(attrs["deregistration_delay.timeout_seconds"]) < CONTRACT_STOP_TIMEOUT
    _, service = the(svc, "AWS::ECS::Service")
    sp = service["Properties"]
    dc = sp["DeploymentConfiguration"]
    assert dc["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}
    assert dc["MinimumHealthyPercent"] == 100 and dc["MaximumPercent"] == 200
    assert sp["HealthCheckGracePeriodSeconds"] >= 60
    assert sp["LoadBalancers"][0]["ContainerPort"] == CONTRACT_PORT
    _, cluster = the(svc, "AWS::ECS::Cluster")
    assert {"Name": "containerInsights", "Value": "enabled"} in cluster["Properties"]["ClusterSettings"]
    policies = resources_of_type(svc, "AWS::ApplicationAutoScaling::ScalingPolicy")
    kinds = {p["Properties"]["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]["PredefinedMetricType"] for p in policies.values()}
    assert kinds == {"ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"}
    assert svc["Resources"]["LogGroup"]["Properties"]["RetentionInDays"]


def test_cognito_matches_contract_groups_and_scopes(templates):
    idt = templates["identity"]
    groups = {g["Properties"]["GroupName"] for g in resources_of_type(idt, "AWS::Cognito::UserPoolGroup").values()}
    assert groups == {"players-admin", "players-editor", "players-viewer"}
    _, rs = the(idt, "AWS::Cognito::UserPoolResourceServer")
    assert rs["Properties"]["Identifier"] == "players"
    assert {s["ScopeName"] for s in rs["Properties"]["Scopes"]} == {"read", "write", "delete", "admin"}
    clients = resources_of_type(idt, "AWS::Cognito::UserPoolClient")
    browser, machine = clients["BrowserClient"]["Properties"], clients["MachineClient"]["Properties"]
    assert browser["AllowedOAuthFlows"] == ["code"] and browser["GenerateSecret"] is True
    assert browser["CallbackURLs"] == [{"Fn::Sub": "https://${PublicHostName}/oauth2/idpresponse"}]
    assert machine["AllowedOAuthFlows"] == ["client_credentials"] and machine["GenerateSecret"] is True
    assert all(s.startswith("players/") for s in machine["AllowedOAuthScopes"])


def test_alarms_notify_the_sns_topic(templates):
    obs = templates["observability"]
    alarms = resources_of_type(obs, "AWS::CloudWatch::Alarm")
    assert len(alarms) >= 5
    for lid, a in alarms.items():
        assert a["Properties"]["AlarmActions"] == [{"Ref": "AlarmTopicArn"}], lid
    queries = resources_of_type(obs, "AWS::Logs::QueryDefinition")
    texts = " ".join(q["Properties"]["QueryString"] for q in queries.values())
    for field in ("request_id", "trace_id", 'level = "ERROR"', 'event = "auth_failure"', "reason"):
        assert field in texts, field
