"""The deployment review (issue 11): least-privilege database roles with alternating-user
rotation, RDS Proxy and autoscaling, WAF, and each gap the review found - one assertion each."""

from __future__ import annotations

import json
import re

from conftest import CFN_DIR, ROOT, TASK_DEF, read_list, resources_of_type

CONTRACT_METRICS = read_list("expected_metrics.txt")
DEPLOY_MD = ROOT / "docs" / "deploy.md"
CAPACITY_MD = ROOT / "docs" / "capacity.md"


def res(templates, name: str, lid: str) -> dict:
    assert lid in templates[name]["Resources"], f"{name}.yaml has no {lid}"
    return templates[name]["Resources"][lid]


def env_of(container: dict) -> dict:
    return {e["Name"]: e["Value"] for e in container.get("Environment", [])}


def app(templates) -> dict:
    (c,) = [c for c in res(templates, "service", "TaskDefinition")["Properties"]["ContainerDefinitions"]
            if c["Name"] == "players-api"]
    return c


def sg_rules(templates):
    """(template, group, direction, rule) for every inline and separate security-group rule."""
    for name, t in templates.items():
        for lid, r in t["Resources"].items():
            p = r.get("Properties", {})
            if r["Type"] == "AWS::EC2::SecurityGroup":
                for rule in p.get("SecurityGroupIngress", []):
                    yield name, lid, "in", rule
                for rule in p.get("SecurityGroupEgress", []):
                    yield name, lid, "out", rule
            elif r["Type"] == "AWS::EC2::SecurityGroupIngress":
                yield name, json.dumps(p["GroupId"]), "in", p
            elif r["Type"] == "AWS::EC2::SecurityGroupEgress":
                yield name, json.dumps(p["GroupId"]), "out", p


# ---------------------------------------------------------------- network

def test_every_security_group_declares_its_egress_inline(templates):
    """Without inline SecurityGroupEgress a group keeps AWS's allow-all egress rule."""
    for name, t in templates.items():
        for lid, sg in resources_of_type(t, "AWS::EC2::SecurityGroup").items():
            assert sg["Properties"].get("SecurityGroupEgress"), f"{name}:{lid} keeps the default allow-all egress"
    # ... and no separate egress rule is bolted onto the ALB's group.
    for lid, r in resources_of_type(templates["network"], "AWS::EC2::SecurityGroupEgress").items():
        assert r["Properties"]["GroupId"] != {"Ref": "AlbSecurityGroup"}, lid


def test_nothing_reaches_the_internet_except_https(templates):
    anywhere = [(n, g, r) for n, g, d, r in sg_rules(templates)
                if d == "out" and (r.get("CidrIp") == "0.0.0.0/0" or r.get("CidrIpv6") == "::/0")]
    assert anywhere
    for name, group, rule in anywhere:
        assert (rule["IpProtocol"], rule["FromPort"], rule["ToPort"]) == ("tcp", 443, 443), (name, group, rule)
    alb_out = res(templates, "network", "AlbSecurityGroup")["Properties"]["SecurityGroupEgress"]
    assert any(r.get("CidrIp") == "0.0.0.0/0" and r["FromPort"] == 443 for r in alb_out), "the ALB needs 443 to the IdP"
    assert any(r.get("DestinationSecurityGroupId") == {"Ref": "TaskSecurityGroup"} for r in alb_out)


# ---------------------------------------------------------------- listener rules

def test_only_health_and_logout_are_public(templates):
    """ALB health checks bypass listener rules, so /ready needs no public rule."""
    public: set[str] = set()
    for lid, r in resources_of_type(templates["service"], "AWS::ElasticLoadBalancingV2::ListenerRule").items():
        p = r["Properties"]
        actions = p["Actions"]
        if isinstance(actions, dict) or r.get("Condition") == "DocsArePublic":
            continue  # the Bearer rule (conditional actions) / opt-in public docs
        if [a["Type"] for a in actions] == ["forward"]:
            for c in p["Conditions"]:
                if c["Field"] == "path-pattern":
                    public.update(c["PathPatternConfig"]["Values"])
    assert public == {"/health", "/logout"}, public


# ---------------------------------------------------------------- identity

def test_every_cognito_client_declares_minimal_auth_flows(templates):
    for lid, c in resources_of_type(templates["identity"], "AWS::Cognito::UserPoolClient").items():
        flows = c["Properties"].get("ExplicitAuthFlows")
        assert flows, f"{lid}: without ExplicitAuthFlows Cognito enables its default login flows"
        assert set(flows) <= {"ALLOW_REFRESH_TOKEN_AUTH"}, (lid, flows)


def test_service_imports_nothing_from_the_identity_stack(templates):
    """CloudFormation resolves imports even in untaken Fn::If branches: the OIDC path would need identity.yaml."""
    identity_exports = {o["Export"]["Name"]["Fn::Sub"].replace("${EnvironmentName}-", "")
                        for o in templates["identity"]["Outputs"].values() if "Export" in o}
    imported = set(re.findall(r'"Fn::ImportValue": \{"Fn::Sub": "\$\{EnvironmentName\}-([A-Za-z]+)"\}',
                              json.dumps(templates["service"])))
    assert not imported & identity_exports, sorted(imported & identity_exports)


def test_rules_require_the_provider_parameters(templates):
    svc = templates["service"]
    rules = svc.get("Rules", {})
    by_provider = {}
    for r in rules.values():
        cond = r["RuleCondition"]["Fn::Equals"]
        assert cond[0] == {"Ref": "IdentityProvider"}
        by_provider[cond[1]] = {json.dumps(a["Assert"]) for a in r["Assertions"]}
    oidc_params = [p for p in svc["Parameters"] if p.startswith("Oidc")]
    assert oidc_params
    for p in oidc_params:
        assert json.dumps({"Fn::Not": [{"Fn::Equals": [{"Ref": p}, ""]}]}) in by_provider["oidc"], p
    for p in [p for p in svc["Parameters"] if p.startswith("Cognito")]:
        assert json.dumps({"Fn::Not": [{"Fn::Equals": [{"Ref": p}, ""]}]}) in by_provider["cognito"], p


def test_bearer_client_ids_is_a_list_not_one_machine_client(templates):
    svc = templates["service"]
    assert svc["Parameters"]["BearerClientIds"]["Type"] == "CommaDelimitedList"
    assert env_of(app(templates))["BEARER_CLIENT_IDS"] == {"Fn::Join": [",", {"Ref": "BearerClientIds"}]}


# ---------------------------------------------------------------- database

def test_engine_version_is_a_major_version(templates):
    db = templates["database"]
    default = db["Parameters"]["DbEngineVersion"]["Default"]
    assert re.fullmatch(r"\d+", default), f"{default!r} pins a minor that RDS retires"
    assert res(templates, "database", "DbParameterGroup")["Properties"]["Family"] == f"postgres{default}"
    assert res(templates, "database", "Database")["Properties"]["AutoMinorVersionUpgrade"] is True


def test_every_log_group_has_retention_including_rds_exports(templates):
    groups = {}
    for name, t in templates.items():
        for lid, lg in resources_of_type(t, "AWS::Logs::LogGroup").items():
            assert lg["Properties"].get("RetentionInDays"), f"{name}:{lid}"
            groups[json.dumps(lg["Properties"]["LogGroupName"])] = lid
    db = res(templates, "database", "Database")
    assert db["Properties"]["DBInstanceIdentifier"] == {"Fn::Sub": "${EnvironmentName}-db"}
    for export in db["Properties"]["EnableCloudwatchLogsExports"]:
        name = json.dumps({"Fn::Sub": f"/aws/rds/instance/${{EnvironmentName}}-db/{export}"})
        assert name in groups, f"RDS would create the {export} log group without retention"
        lid = groups[name]
        assert res(templates, "database", lid)["Condition"] == "RdsLogGroups"
        # The instance waits for the groups (through a handle: DependsOn cannot name conditional resources).
        assert db["DependsOn"] == ["LogGroupsReady"]
        handle = json.dumps(res(templates, "database", "LogGroupsReady"))
        assert json.dumps({"Ref": lid}) in handle, f"the {export} log group must exist before RDS writes to it"
    assert templates["database"]["Parameters"]["CreateRdsLogGroups"]["Default"] == "true"


def test_runtime_secret_rotates_with_alternating_users(templates):
    db = templates["database"]
    assert "AWS::SecretsManager-2020-07-23" in (db["Transform"] if isinstance(db["Transform"], list) else [db["Transform"]])
    assert db["Parameters"]["AppUsername"]["Default"] == "players_app"
    secret = res(templates, "database", "AppUserSecret")["Properties"]["GenerateSecretString"]
    assert secret["GenerateStringKey"] == "password"
    tpl = secret["SecretStringTemplate"]["Fn::Sub"]
    shape = json.loads(re.sub(r"\$\{[A-Za-z.]+\}", "x", tpl))
    assert set(shape) == {"engine", "host", "port", "dbname", "username", "masterarn"}
    assert '"engine":"postgres"' in tpl and '"username":"${AppUsername}"' in tpl
    # The rotation function requires host == the master's host: the instance, not the proxy.
    assert '"host":"${Database.Endpoint.Address}"' in tpl
    assert '"masterarn":"${Database.MasterUserSecret.SecretArn}"' in tpl
    (rot,) = resources_of_type(db, "AWS::SecretsManager::RotationSchedule").values()
    p = rot["Properties"]
    assert p["SecretId"] == {"Ref": "AppUserSecret"}
    h = p["HostedRotationLambda"]
    assert h["RotationType"] == "PostgreSQLMultiUser"
    assert h["MasterSecretArn"] == {"Fn::GetAtt": ["Database", "MasterUserSecret.SecretArn"]}
    assert h["VpcSecurityGroupIds"] == {"Ref": "RotationSecurityGroup"} and h["VpcSubnetIds"]
    # players_app exists only after the first migration task: no rotation at creation.
    assert p["RotateImmediatelyOnUpdate"] is False
    assert p["RotationRules"]["ScheduleExpression"]


def test_rds_proxy_is_optional_on_by_default_and_requires_tls(templates):
    db = templates["database"]
    assert db["Parameters"]["EnableProxy"]["Default"] == "true"
    proxy = res(templates, "database", "Proxy")
    assert proxy["Condition"] == "UseProxy"
    p = proxy["Properties"]
    assert p["EngineFamily"] == "POSTGRESQL" and p["RequireTLS"] is True
    assert p["Auth"] == [{"AuthScheme": "SECRETS", "SecretArn": {"Ref": "AppUserSecret"}, "IAMAuth": "DISABLED",
                          "ClientPasswordAuthType": "POSTGRES_SCRAM_SHA_256"}]
    tg = res(templates, "database", "ProxyTargetGroup")["Properties"]
    assert tg["DBInstanceIdentifiers"] == [{"Ref": "Database"}]
    assert tg["ConnectionPoolConfigurationInfo"]["MaxConnectionsPercent"] == {"Ref": "ProxyMaxConnectionsPercent"}
    outs = db["Outputs"]
    assert outs["ServiceDbHost"]["Value"] == {"Fn::If": ["UseProxy", {"Fn::GetAtt": ["Proxy", "Endpoint"]},
                                                         {"Fn::GetAtt": ["Database", "Endpoint.Address"]}]}
    # Not exports: toggling EnableProxy changes them, and an imported export cannot change.
    assert "Export" not in outs["ServiceDbHost"] and "Export" not in outs["ServiceDbSslRootCert"]
    # The proxy presents an ACM certificate: the system bundle verifies it, the RDS bundle does not.
    assert outs["ServiceDbSslRootCert"]["Value"]["Fn::If"][1] == "/etc/ssl/certs/ca-certificates.crt"
    svc = templates["service"]["Parameters"]
    assert svc["DbSslRootCert"]["Default"] == "/etc/ssl/certs/ca-certificates.crt", "the proxy is the default"
    env = env_of(app(templates))
    assert env["DB_HOST"] == {"Ref": "DbHost"} and env["DB_SSLROOTCERT"] == {"Ref": "DbSslRootCert"}


# ---------------------------------------------------------------- migrations

def test_migrations_do_not_run_at_service_start(templates):
    assert env_of(app(templates))["RUN_MIGRATIONS"] == "false"
    (c,) = [c for c in json.loads(TASK_DEF.read_text())["containerDefinitions"] if c["name"] == "players-api"]
    assert {e["name"]: e["value"] for e in c["environment"]}["RUN_MIGRATIONS"] == "false"


def test_one_off_migration_task_definition(templates):
    td = res(templates, "service", "MigrationTaskDefinition")["Properties"]
    (c,) = td["ContainerDefinitions"]
    assert c["Image"] == {"Fn::If": ["SeparateMigrationImage", {"Ref": "MigrationImageUri"}, {"Ref": "ImageUri"}]}
    assert templates["service"]["Parameters"]["MigrationImageUri"]["Default"] == "", "the same image as the service"
    assert c["EntryPoint"] + c["Command"] == ["players-api", "migrate"]
    env = env_of(c)
    assert env["DB_SECRET_ARN"] == {"Fn::ImportValue": {"Fn::Sub": "${EnvironmentName}-DbSecretArn"}}, "the owner's secret"
    assert env["DB_APP_SECRET_ARN"] == {"Fn::ImportValue": {"Fn::Sub": "${EnvironmentName}-DbAppSecretArn"}}
    assert env["DB_HOST"] == {"Fn::ImportValue": {"Fn::Sub": "${EnvironmentName}-DbHost"}}
    assert templates["database"]["Outputs"]["DbHost"]["Value"] == {"Fn::GetAtt": ["Database", "Endpoint.Address"]}
    assert env["DB_SSLMODE"] == "verify-full"
    assert td["TaskRoleArn"] == {"Fn::GetAtt": ["MigrationTaskRole", "Arn"]}
    assert td["TaskRoleArn"] != res(templates, "service", "TaskDefinition")["Properties"]["TaskRoleArn"]
    assert "MigrationTaskDefinitionArn" in templates["service"]["Outputs"]


# ---------------------------------------------------------------- scale-out

def test_autoscaling_on_requests_and_cpu_with_a_measured_target(templates):
    svc = templates["service"]
    policies = {p["Properties"]["TargetTrackingScalingPolicyConfiguration"]["PredefinedMetricSpecification"]["PredefinedMetricType"]:
                p["Properties"]["TargetTrackingScalingPolicyConfiguration"]
                for p in resources_of_type(svc, "AWS::ApplicationAutoScaling::ScalingPolicy").values()}
    assert policies["ALBRequestCountPerTarget"]["TargetValue"] == {"Ref": "RequestsPerTargetTarget"}
    assert policies["ECSServiceAverageCPUUtilization"]["TargetValue"] == {"Ref": "CpuTargetPercent"}
    target = svc["Parameters"]["RequestsPerTargetTarget"]["Default"]
    doc = CAPACITY_MD.read_text()
    assert f"{target:,}" in doc or str(target) in doc, "docs/capacity.md must derive RequestsPerTargetTarget"


def test_pool_size_formula_holds_for_the_defaults(templates):
    """Without the proxy: pool x max tasks x 2 (rolling deployment) + reserve <= max_connections."""
    svc = templates["service"]["Parameters"]
    pool, max_tasks = svc["DbPoolSize"]["Default"], svc["MaxCapacity"]["Default"]
    assert env_of(app(templates))["DB_MAX_CONNECTIONS"] == {"Ref": "DbPoolSize"}
    doc = CAPACITY_MD.read_text()
    m = re.search(r"db\.t4g\.medium[^\n|]*\|\s*([\d,]+)\s*\|", doc)
    assert m, "docs/capacity.md must give max_connections of the default instance class"
    max_conn = int(m.group(1).replace(",", ""))
    reserve = 3 + 10  # superuser_reserved_connections + migrations, rotation, operators (docs)
    assert pool * max_tasks * 2 + reserve <= max_conn, (pool, max_tasks, max_conn)
    assert templates["database"]["Parameters"]["DbInstanceClass"]["Default"] == "db.t4g.medium"


# ---------------------------------------------------------------- edge protection

def test_waf_on_the_alb_with_managed_rules_rate_limit_and_logging(templates):
    svc = templates["service"]
    assert svc["Parameters"]["EnableWaf"]["Default"] == "true"
    acl = res(templates, "service", "WebAcl")
    assert acl["Condition"] == "UseWaf"
    p = acl["Properties"]
    assert p["Scope"] == "REGIONAL" and p["DefaultAction"] == {"Allow": {}}
    managed = {r["Statement"]["ManagedRuleGroupStatement"]["Name"] for r in p["Rules"]
               if "ManagedRuleGroupStatement" in r["Statement"]}
    assert managed == {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"}
    (rate,) = [r for r in p["Rules"] if "RateBasedStatement" in r["Statement"]]
    assert rate["Action"] == {"Block": {}}
    assert rate["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"
    assert rate["Statement"]["RateBasedStatement"]["Limit"] == {"Ref": "WafRateLimitPer5Min"}
    assert str(svc["Parameters"]["WafRateLimitPer5Min"]["Default"]) in CAPACITY_MD.read_text().replace(",", "")
    assoc = res(templates, "service", "WebAclAssociation")
    assert assoc["Properties"] == {"ResourceArn": {"Ref": "LoadBalancer"}, "WebACLArn": {"Fn::GetAtt": ["WebAcl", "Arn"]}}
    log = res(templates, "service", "WafLogging")["Properties"]
    lg = res(templates, "service", "WafLogGroup")["Properties"]
    assert lg["LogGroupName"]["Fn::Sub"].startswith("aws-waf-logs-") and lg["RetentionInDays"]
    assert "${WafLogGroup}" in log["LogDestinationConfigs"][0]["Fn::Sub"]
    redacted = {f["SingleHeader"]["Name"] for f in log["RedactedFields"]}
    assert {"authorization", "cookie"} <= redacted, "tokens and session cookies must not reach the WAF log"
    for lid in ("WebAcl", "WebAclAssociation", "WafLogGroup", "WafLogging"):
        assert res(templates, "service", lid)["Condition"] == "UseWaf", lid


# ---------------------------------------------------------------- alarms

def alarmed_metrics(templates) -> set[tuple[str, str]]:
    out = set()
    for a in resources_of_type(templates["observability"], "AWS::CloudWatch::Alarm").values():
        p = a["Properties"]
        if "MetricName" in p:
            ns = p["Namespace"]
            out.add(("service" if ns == {"Ref": "MetricsNamespace"} else ns, p["MetricName"]))
        for m in p.get("Metrics", []):
            if "MetricStat" in m:
                met = m["MetricStat"]["Metric"]
                out.add((met["Namespace"], met["MetricName"]))
    return out


def test_every_failure_metric_has_an_alarm(templates):
    alarmed = alarmed_metrics(templates)
    failures = [m for m in CONTRACT_METRICS if m.endswith(("Errors", "Failures"))]
    assert set(failures) >= {"KeyFetchErrors", "JwksRefreshErrors", "SecretRefreshErrors", "AuthFailures"}
    for m in failures:
        assert ("service", m) in alarmed, f"the service emits {m} but nothing alarms on it"
    for needed in [("AWS/ApplicationELB", "HTTPCode_Target_5XX_Count"), ("AWS/ApplicationELB", "HTTPCode_ELB_5XX_Count"),
                   ("AWS/ApplicationELB", "ELBAuthError"), ("AWS/ApplicationELB", "UnHealthyHostCount"),
                   ("AWS/RDS", "CPUUtilization"), ("AWS/RDS", "FreeStorageSpace"), ("AWS/RDS", "DatabaseConnections")]:
        assert needed in alarmed, needed


# ---------------------------------------------------------------- image

def test_release_binary_is_stripped_of_debug_info():
    import tomllib
    release = tomllib.loads((ROOT / "Cargo.toml").read_text())["profile"]["release"]
    assert release.get("debug", False) in (False, 0, "none"), "DWARF made the image binary 174 MB"
    assert release.get("strip") in ("debuginfo", "symbols", True), "strip the shipped binary"
    assert "strip" in (ROOT / "Dockerfile").read_text().lower(), "the Dockerfile says what is stripped and why"


# ---------------------------------------------------------------- runbook

def test_readme_points_to_the_runbook():
    readme = (ROOT / "README.md").read_text()
    assert "docs/deploy.md" in readme
    assert "envsubst" not in readme and "aws cloudformation deploy" not in readme, "the runbook lives in docs/deploy.md"


def test_runbook_covers_an_empty_account_to_teardown():
    doc = DEPLOY_MD.read_text()
    for needle, why in [
        ("aws acm request-certificate", "certificate request"),
        ("--validation-method DNS", "certificate validation"),
        ("aws acm wait certificate-validated", "waiting for validation"),
        ("aws ecr put-lifecycle-policy", "ECR lifecycle policy"),
        ("aws iam create-service-linked-role --aws-service-name ecs.amazonaws.com", "ECS service-linked role"),
        ("aws ecs run-task", "migration task"),
        ("MigrationTaskDefinitionArn", "migration task"),
        ("aws secretsmanager rotate-secret", "first rotation"),
        ("players_app_clone", "alternating users"),
        ("## Upgrading a stack deployed with the master user", "upgrade path"),
        ("## Teardown", "teardown"),
        ("deletion_protection.enabled", "teardown: ALB deletion protection"),
        ("--no-deletion-protection", "teardown: RDS deletion protection"),
        ("aws cloudformation delete-stack", "teardown"),
    ]:
        assert needle in doc, f"docs/deploy.md lacks {why} ({needle!r})"
    # Stacks are torn down in reverse order.
    order = [m.group(1) for m in re.finditer(r"delete-stack --stack-name \$ENV_NAME-([a-z]+)", doc)]
    assert order == ["observability", "service", "database", "identity", "network"], order


def test_every_template_is_deployed_by_the_runbook():
    doc = DEPLOY_MD.read_text()
    for path in sorted(CFN_DIR.glob("*.yaml")):
        assert f"cloudformation/{path.name}" in doc, path.name
