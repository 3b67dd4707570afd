# syntax=docker/dockerfile:1
# aegis-audit: one image for `daemon` (sidecar / Deployment) and `run` (CronJob).
# Build: docker build -t aegis-audit:0.1.0 .

# ---- build: dev dependencies, TypeScript compile
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY checks ./checks
RUN npm run build

# ---- runtime: production dependencies only, non-root
FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production \
    AEGIS_AUDIT_HEALTH_URL=http://127.0.0.1:9464/healthz
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY bin ./bin
COPY templates ./templates
COPY alerts ./alerts
COPY docs ./docs
# The image's `node` user (uid 1000); reports and state go to a writable volume.
RUN mkdir -p /var/lib/aegis-audit && chown node:node /var/lib/aegis-audit
USER node
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "-e", "require('http').get(process.env.AEGIS_AUDIT_HEALTH_URL, (r) => process.exit(r.statusCode === 200 ? 0 : 1)).on('error', () => process.exit(1))"]
ENTRYPOINT ["node", "bin/aegis-audit.js"]
CMD ["daemon", "--config", "/etc/aegis-audit/audit.yaml"]
