# syntax=docker/dockerfile:1
# aegis-audit: one image for `daemon` (sidecar / Deployment) and `run` (CronJob).
# Build: docker build -t aegis-audit:0.1.0 .   (or: buildah bud -t aegis-audit:0.1.0 .)
#
# The runtime stage holds exactly what the npm package ships (package.json "files"), with the
# production dependencies the lockfile pins: no dev dependencies and no optional ones, so no
# embedded-postgres (the sandbox behind `demo` needs it; `daemon` and `run` never do).
# test/package/ builds the same file tree with the same commands and runs it.

# ---- build: dev dependencies, TypeScript compile, the package tarball
FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json README.md LICENSE ./
COPY bin ./bin
COPY src ./src
COPY checks ./checks
COPY templates ./templates
COPY alerts ./alerts
COPY dashboards ./dashboards
COPY docs ./docs
RUN npm run build && npm pack --ignore-scripts --pack-destination /tmp && mv /tmp/aegis-audit-*.tgz /tmp/aegis-audit.tgz

# ---- runtime: the packed files, production dependencies only, non-root
FROM node:22-bookworm-slim AS runtime
ENV NODE_ENV=production \
    AEGIS_AUDIT_HEALTH_URL=http://127.0.0.1:9464/healthz
WORKDIR /app
COPY --from=build /tmp/aegis-audit.tgz /tmp/aegis-audit.tgz
COPY package-lock.json ./
RUN tar -xzf /tmp/aegis-audit.tgz --strip-components=1 -C /app && rm /tmp/aegis-audit.tgz \
 && npm ci --omit=dev --omit=optional --no-audit --no-fund && npm cache clean --force
# The image's `node` user (uid 1000); reports and state go to a writable volume.
RUN mkdir -p /var/lib/aegis-audit && chown node:node /var/lib/aegis-audit
USER node
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "require('http').get(process.env.AEGIS_AUDIT_HEALTH_URL, (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1))"]
# 2 MiB semi-spaces for the main thread: a receipt-chain pass keeps little on it from one
# batch to the next, and a million-row pass then stays under 200 MiB; 8 and 16 MiB were no
# faster (docs/performance.md).
ENTRYPOINT ["node", "--max-semi-space-size=2", "bin/aegis-audit.js"]
CMD ["daemon", "--config", "/etc/aegis-audit/audit.yaml"]
