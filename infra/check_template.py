"""Check what SAM makes of template.yaml, past what the linters look at.

Translates the template offline with aws-sam-translator (the SAM CLI's virtualenv has it)
and asserts the wiring the Rust side relies on: which function serves which route, the
binaries cargo-lambda builds, the environment every function reads, the CORS block of the
HTTP API (SAM silently drops it when CorsConfiguration takes an intrinsic), the S3 upload
trigger and the SQS trigger. Run by infra/lint.sh.
"""

import json
import os
import re
import sys
from pathlib import Path

from cfnlint.decode import decode
from samtranslator.translator.transform import transform

ROOT = Path(__file__).resolve().parent.parent

ROUTES = {
    "$default": "Auth",
    "/health": "Auth",
    "/openapi.json": "Auth",
    "/docs": "Auth",
    "/docs.css": "Auth",
    **{p: "Auth" for p in ("/auth", "/auth/{proxy+}")},
    **{p: "Users" for p in ("/users", "/users/{proxy+}")},
    **{p: "Datasets" for p in ("/upload", "/upload/{proxy+}")},
    **{
        p: "Generation"
        for prefix in ("/generation", "/generation-v2", "/data")
        for p in (prefix, prefix + "/{proxy+}")
    },
    **{p: "Optimization" for p in ("/optimization", "/optimization/{proxy+}")},
    **{p: "Stats" for p in ("/stats", "/stats/{proxy+}")},
    **{p: "Notifications" for p in ("/notifications", "/notifications/{proxy+}")},
    **{p: "Admin" for p in ("/admin", "/admin/{proxy+}")},
}
BINARIES = {
    "auth", "users", "datasets", "generation", "optimization", "stats", "notifications",
    "admin", "dispatch", "ingest", "notify",
}
ENVIRONMENT = {
    "ENVIRONMENT", "SECRET_KEY", "SYNTH_TABLE", "SYNTH_BUCKET", "SYNTH_QUEUE_URL",
    "SYNTH_TOPIC_ARN", "SYNTH_JOB_QUEUE", "SYNTH_JOB_DEFINITION", "CORS_ORIGINS",
    "LOG_LEVEL", "MAX_FILE_SIZE_MB", "SYNTH_PUSH_APNS_ARN", "SYNTH_PUSH_FCM_ARN",
}


class NoManagedPolicies:
    def load(self):
        return {}


def main() -> None:
    template, matches = decode(str(ROOT / "template.yaml"))
    if matches:
        sys.exit(f"template.yaml does not parse: {matches}")

    # Every source function is a cargo-lambda build of one named binary of the workspace.
    sam_functions = {
        name: r for name, r in template["Resources"].items()
        if r["Type"] == "AWS::Serverless::Function"
    }
    binaries = set()
    for name, r in sam_functions.items():
        meta = r.get("Metadata", {})
        assert meta.get("BuildMethod") == "rust-cargolambda", f"{name}: BuildMethod"
        binaries.add(meta["BuildProperties"]["Binary"])
    assert binaries == BINARIES, f"binaries {sorted(binaries)} != {sorted(BINARIES)}"
    env = set(template["Globals"]["Function"]["Environment"]["Variables"])
    assert ENVIRONMENT <= env, f"Globals lack {sorted(ENVIRONMENT - env)}"

    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    template["Globals"]["Function"]["CodeUri"] = "s3://bucket/key"
    out = transform(json.loads(json.dumps(template)), {}, NoManagedPolicies())
    res = out["Resources"]

    body = res["Api"]["Properties"]["Body"]
    cors = body.get("x-amazon-apigateway-cors")
    assert isinstance(cors, dict) and "allowOrigins" in cors, f"CORS block lost: {cors}"
    assert "authorization" in cors.get("allowHeaders", []), "CORS must allow authorization"
    routes = {}
    for path, ops in body["paths"].items():
        uri = ops["x-amazon-apigateway-any-method"]["x-amazon-apigateway-integration"]["uri"]
        routes[path] = re.search(r"\$\{(\w+)Function\.Arn\}", uri["Fn::Sub"]).group(1)
    assert routes == ROUTES, f"routes differ: {sorted(set(routes.items()) ^ set(ROUTES.items()))}"

    notifications = res["DataBucket"]["Properties"]["NotificationConfiguration"]
    [upload] = notifications["LambdaConfigurations"]
    assert upload["Function"] == {"Fn::GetAtt": ["IngestFunction", "Arn"]}
    assert upload["Event"] == "s3:ObjectCreated:*"
    assert upload["Filter"]["S3Key"]["Rules"] == [{"Name": "prefix", "Value": "uploads/"}]

    sqs = res["DispatchFunctionTrainingQueue"]["Properties"]
    assert sqs["EventSourceArn"] == {"Fn::GetAtt": ["TrainingQueue", "Arn"]}
    assert sqs["FunctionResponseTypes"] == ["ReportBatchItemFailures"] and sqs["BatchSize"] == 10

    sns = res["NotifyFunctionCompletion"]["Properties"]
    assert sns["Protocol"] == "lambda" and sns["TopicArn"] == {"Ref": "CompletionTopic"}

    print(f"template wiring: ok ({len(routes)} routes, {len(binaries)} functions)")


if __name__ == "__main__":
    main()
