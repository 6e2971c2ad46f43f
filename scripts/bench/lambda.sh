#!/usr/bin/env bash
# The serverless deployment, built and started offline on this machine:
#   1. `sam build` of every function (cargo-lambda with zig, for arm64, as infra/README.md
#      sets up): how long it took, and each function's bootstrap size;
#   2. a light function's cold start: the stats function built for this machine and started
#      SYNTH_COLD_STARTS times (default 5) under cargo-lambda's runtime emulator (`cargo
#      lambda watch --only-lambda-apis`), against the AWS emulator (moto server) holding the
#      stack's table, bucket, queue and topic: the time from the process's start to its
#      answer to the first invocation, for `GET /stats/dashboard` without a token (401: the
#      middleware and the router, no store call) and for `GET /health` (one call to every
#      store);
#   3. the route meter's writes at shutdown: five calls, then SIGTERM as Lambda sends it when
#      it retires a container, and how many of the five the statistics then count.
#
#   scripts/bench/lambda.sh [--no-build]
#
# Installs what it needs (pinned, into the virtualenvs scripts/test and infra/lint.sh keep
# under ~/.cache/synth), prints figures and checks nothing.
set -euo pipefail
cd "$(dirname "$0")/../.."

CACHE="${SYNTH_CACHE_DIR:-$HOME/.cache/synth}"
SAM_VENV="$CACHE/sam-venv"
TEST_VENV="$CACHE/venv"
starts=${SYNTH_COLD_STARTS:-5}
installed() { [[ "$("$1/bin/python" -m pip show "$2" 2>/dev/null)" == *$'\nVersion: '"$3"$'\n'* ]]; }
if ! installed "$SAM_VENV" aws-sam-cli 1.170.0 || ! installed "$SAM_VENV" cargo-lambda 1.9.2 \
  || ! installed "$SAM_VENV" ziglang 0.17.1; then
  python3 -m venv "$SAM_VENV"
  "$SAM_VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    aws-sam-cli==1.170.0 cargo-lambda==1.9.2 ziglang==0.17.1
fi
if ! installed "$TEST_VENV" moto 5.2.5; then
  python3 -m venv "$TEST_VENV"
  "$TEST_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "moto[server]==5.2.5"
fi
export PATH="$SAM_VENV/bin:$PATH" SAM_CLI_TELEMETRY=0 AWS_DEFAULT_REGION=us-east-1

if [ "${1:-}" != "--no-build" ]; then
  rustup target add aarch64-unknown-linux-gnu >/dev/null
  echo "== sam build (every function, arm64)"
  t0=$(date +%s)
  sam build >"$CACHE/sam-build.log" 2>&1 || { tail -30 "$CACHE/sam-build.log"; exit 1; }
  echo "sam build: $(( $(date +%s) - t0 )) s"
  for f in .aws-sam/build/*/bootstrap; do
    printf '%-24s %6.1f MB\n' "$(basename "$(dirname "$f")")" \
      "$(echo "$(stat -c %s "$f") / 1048576" | bc -l)"
  done
fi

echo "== the stats function's cold start under cargo-lambda's runtime emulator"
cargo build --release --locked -p fn-stats 2>&1 | tail -1
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
moto_port=$(free_port)
rt_port=$(free_port)
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
"$TEST_VENV/bin/moto_server" -H 127.0.0.1 -p "$moto_port" >"$work/moto.log" 2>&1 &
pids+=($!)
cargo lambda watch --only-lambda-apis -A 127.0.0.1 -P "$rt_port" >"$work/emulator.log" 2>&1 &
pids+=($!)

"$SAM_VENV/bin/python" - "$moto_port" "$rt_port" "$starts" target/release/stats <<'PY'
import json, os, socket, statistics, subprocess, sys, time, urllib.request
import boto3

moto, rt, starts, binary = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
endpoint = f"http://127.0.0.1:{moto}"
def up(port):
    try:
        socket.create_connection(("127.0.0.1", int(port)), timeout=1).close()
        return True
    except OSError:
        return False
for _ in range(240):
    if up(moto) and up(rt):
        break
    time.sleep(0.5)
aws = dict(endpoint_url=endpoint, region_name="us-east-1",
           aws_access_key_id="testing", aws_secret_access_key="testing")
key = lambda *names: [{"AttributeName": n, "KeyType": t} for n, t in zip(names, ["HASH", "RANGE"])]
attrs = ["pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk"]
boto3.client("dynamodb", **aws).create_table(
    TableName="synth", BillingMode="PAY_PER_REQUEST", KeySchema=key("pk", "sk"),
    AttributeDefinitions=[{"AttributeName": a, "AttributeType": "S"} for a in attrs],
    GlobalSecondaryIndexes=[{"IndexName": g, "KeySchema": key(f"{g}pk", f"{g}sk"),
                             "Projection": {"ProjectionType": "ALL"}} for g in ["gsi1", "gsi2"]])
boto3.client("s3", **aws).create_bucket(Bucket="synth-data")
queue = boto3.client("sqs", **aws).create_queue(
    QueueName="synth.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
topic = boto3.client("sns", **aws).create_topic(Name="synth")["TopicArn"]
env = dict(os.environ,
    ENVIRONMENT="production", SECRET_KEY="bench-secret-key-0123456789abcdefghijklmn",
    LOG_LEVEL="warn", SYNTH_TABLE="synth", SYNTH_BUCKET="synth-data", SYNTH_QUEUE_URL=queue,
    SYNTH_TOPIC_ARN=topic, SYNTH_JOB_QUEUE="synth-jobs", SYNTH_JOB_DEFINITION="synth-trainer",
    AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
    AWS_REGION="us-east-1", AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH="true",
    AWS_LAMBDA_FUNCTION_VERSION="1", AWS_LAMBDA_FUNCTION_MEMORY_SIZE="512",
    AWS_LAMBDA_RUNTIME_API=f"http://127.0.0.1:{rt}/.rt", AWS_LAMBDA_FUNCTION_NAME="_")

def event(path):
    return json.dumps({
        "version": "2.0", "routeKey": "$default", "rawPath": path, "rawQueryString": "",
        "headers": {"host": "api.example.com", "user-agent": "bench"},
        "requestContext": {"accountId": "123456789012", "apiId": "api", "domainName": "api.example.com",
            "domainPrefix": "api", "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1",
            "sourceIp": "127.0.0.1", "userAgent": "bench"}, "requestId": "bench",
            "routeKey": "$default", "stage": "$default", "time": "06/Dec/2026:00:00:00 +0000",
            "timeEpoch": 0},
        "isBase64Encoded": False}).encode()

invoke = f"http://127.0.0.1:{rt}/2015-03-31/functions/_/invocations"
for path in ["/stats/dashboard", "/health"]:
    took, statuses = [], []
    for _ in range(starts):
        t0 = time.perf_counter()
        fn = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with urllib.request.urlopen(urllib.request.Request(invoke, data=event(path)), timeout=60) as r:
            answer = json.load(r)
        took.append((time.perf_counter() - t0) * 1000)
        statuses.append(answer.get("statusCode"))
        fn.kill()
        fn.wait()
    print(f"GET {path:<16} first answer after start: median {statistics.median(took):.1f} ms, "
          f"min {min(took):.1f}, max {max(took):.1f} ({starts} cold starts, status {sorted(set(statuses))})")

# The route meter writes every 10 s while calls come; a container's last calls are written
# when Lambda retires it (SIGTERM). Five quick calls, then SIGTERM: the count written.
import signal
def dashboard_calls_counted():
    return sum(int(i["count"]["N"]) for i in boto3.client("dynamodb", **aws).scan(TableName="synth")["Items"]
               if i["pk"]["S"].startswith("PERF#D") and i.get("series", {}).get("S") == "GET /stats/dashboard")
before = dashboard_calls_counted()
fn = subprocess.Popen([binary], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
for _ in range(5):
    urllib.request.urlopen(urllib.request.Request(invoke, data=event("/stats/dashboard")), timeout=60).read()
fn.send_signal(signal.SIGTERM)
code = fn.wait(timeout=10)
print(f"route measurements written by the time SIGTERM ends the function (exit {code}): "
      f"{dashboard_calls_counted() - before} of 5 calls")
PY
