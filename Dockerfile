# Builds the invitebus binary; docker-compose.yml runs it beside a NATS server with JetStream.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release -p invitebus

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/invitebus /usr/local/bin/invitebus
VOLUME /data
ENV INVITEBUS_DATA=/data
ENTRYPOINT ["invitebus"]
CMD ["serve"]
