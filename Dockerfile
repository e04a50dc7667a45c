# One image for every role; the command picks it (api, worker, migrate, ...).
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=docker
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/streamhooks ./cmd/streamhooks

FROM alpine:3.22
RUN apk add --no-cache ca-certificates wget && adduser -D -u 10001 streamhooks
COPY --from=build /out/streamhooks /usr/local/bin/streamhooks
USER streamhooks
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/streamhooks"]
CMD ["--help"]
