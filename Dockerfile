# syntax=docker/dockerfile:1.7
#
# players-api container image: multi-stage build (cargo-chef dependency caching) -> distroless.
#
# Build and push to ECR (from the repo root, on a machine with Docker/BuildKit):
#
#   export AWS_REGION=eu-west-1 AWS_ACCOUNT_ID=$(aws sts get-caller-identity --query Account --output text)
#   export ECR_REPO=$AWS_ACCOUNT_ID.dkr.ecr.$AWS_REGION.amazonaws.com/players-api
#   export IMAGE_TAG=$(git rev-parse --short=12 HEAD)
#   aws ecr describe-repositories --repository-names players-api >/dev/null 2>&1 || \
#     aws ecr create-repository --repository-name players-api \
#       --image-tag-mutability IMMUTABLE --image-scanning-configuration scanOnPush=true
#   aws ecr get-login-password | docker login --username AWS --password-stdin ${ECR_REPO%%/*}
#   docker buildx build --platform linux/amd64 -t "$ECR_REPO:$IMAGE_TAG" --push .
#
# The platform must match `runtimePlatform.cpuArchitecture` in ecs-task-def.json (X86_64).
# See docs/deploy.md for the whole deployment (migration task, rotation, teardown).
#
# Base image pinning: the tags below are pinned to exact versions. Their digests could NOT be
# verified offline on the machine this file was written on (no registry access), so no digest
# is written here rather than an unverified one. Before the first production push, pin them:
#   docker buildx imagetools inspect rust:1.95.0-slim-bookworm --format '{{json .Manifest.Digest}}'
#   docker buildx imagetools inspect gcr.io/distroless/cc-debian12:nonroot --format '{{json .Manifest.Digest}}'
# and append `@sha256:...` to the FROM lines (keeping the tag for readability).
#
# No secrets are used or copied: the service reads its database credentials at runtime from
# Secrets Manager (DB_SECRET_ARN, task role). Migrations are embedded in the binary
# (sqlx::migrate!), so the runtime image holds only the binary and the RDS CA bundle.

########## chef: the Rust toolchain plus cargo-chef ##########
FROM rust:1.95.0-slim-bookworm AS chef
WORKDIR /app
# cargo-chef from crates.io, exact version, with its own lock file.
RUN cargo install cargo-chef --version 0.1.78 --locked

########## planner: a recipe of the dependency graph only ##########
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

########## builder: dependencies (cached layer), then the app ##########
FROM chef AS builder
# Compile-time checked sqlx queries (if any) use the committed .sqlx data, never a database.
ENV SQLX_OFFLINE=true
COPY --from=planner /app/recipe.json recipe.json
# This layer changes only when Cargo.toml / Cargo.lock change.
RUN cargo chef cook --release --locked --recipe-path recipe.json --bin players-api
COPY . .
# The exact build command of the project (scripts/check-infra.sh extracts and runs this line).
# The binary comes out stripped of debug info by Cargo.toml's [profile.release] (debug = false,
# strip = "debuginfo"): the line tables alone made it 174 MB. The symbol table stays (a few MB),
# so a panic backtrace in the logs still names the functions; no separate debug-info file is
# shipped or kept, because nothing here would store or serve it - rebuild the same commit with
# line tables when file:line is needed (see Cargo.toml).
RUN cargo build --release --locked --bin players-api
# Amazon RDS CA bundle for DB_SSLMODE=verify-full (DB_SSLROOTCERT in the task definition).
# checkov:skip=CKV_DOCKER_4: a remote file (no archive) fetched in the throw-away builder stage; only the PEM is copied on.
ADD https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem /out/rds-global-bundle.pem
RUN cp target/release/players-api /out/players-api \
    && chmod 0555 /out/players-api \
    && chmod 0444 /out/rds-global-bundle.pem

########## runtime: distroless (glibc, libgcc, CA certificates; no shell) ##########
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
COPY --from=builder /out/players-api /usr/local/bin/players-api
COPY --from=builder /out/rds-global-bundle.pem /etc/ssl/certs/rds-global-bundle.pem
# Numeric non-root user (distroless "nonroot"); ECS also sets user "65532" in the task definition.
USER 65532:65532
ENV LISTEN_ADDR=0.0.0.0:8080 \
    LOG_FORMAT=json \
    DB_SSLROOTCERT=/etc/ssl/certs/rds-global-bundle.pem
EXPOSE 8080
# The binary is its own probe (distroless has no curl): GET /health on LISTEN_ADDR.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["players-api", "healthcheck"]
ENTRYPOINT ["players-api", "serve"]
