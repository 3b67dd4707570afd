/**
 * The Grafana dashboard of aegis-audit, built in code with the Grafana Foundation SDK (typed
 * builders) and written to dashboards/aegis-compliance.json:  npm run dashboards
 *
 * Every query reads the series the daemon exports (src/outputs/metrics.ts) and filters on the
 * `deployment` variable (every aegis_compliance_* series carries `deployment`), never on a
 * scrape job. test/dashboards/ checks that each query's metrics exist in a real scrape of the
 * demo daemon and that promtool parses every expression.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as dashboard from '@grafana/grafana-foundation-sdk/dashboard';
import * as common from '@grafana/grafana-foundation-sdk/common';
import * as prometheus from '@grafana/grafana-foundation-sdk/prometheus';
import * as stat from '@grafana/grafana-foundation-sdk/stat';
import * as table from '@grafana/grafana-foundation-sdk/table';
import * as timeseries from '@grafana/grafana-foundation-sdk/timeseries';
import * as bargauge from '@grafana/grafana-foundation-sdk/bargauge';
import * as statetimeline from '@grafana/grafana-foundation-sdk/statetimeline';

export const DASHBOARD_UID = 'aegis-compliance';
const DS: common.DataSourceRef = { type: 'prometheus', uid: '${datasource}' };
/** The deployment filter every query carries. */
const D = 'deployment=~"$deployment"';

const q = (expr: string, legend = '', refId = 'A') => new prometheus.DataqueryBuilder().datasource(DS).expr(expr).legendFormat(legend).refId(refId);
const instant = (expr: string, refId = 'A') => new prometheus.DataqueryBuilder().datasource(DS).expr(expr).instant().format(prometheus.PromQueryFormat.Table).refId(refId);

const thresholds = (steps: [number | null, string][]) =>
  new dashboard.ThresholdsConfigBuilder().mode(dashboard.ThresholdsMode.Absolute).steps(steps.map(([value, color]) => ({ value, color })));

function overview(): dashboard.RowBuilder {
  const stateMap: dashboard.ValueMapping = {
    type: dashboard.MappingType.ValueToText,
    options: { '0': { text: 'Compliant', color: 'green', index: 0 }, '1': { text: 'Failing', color: 'red', index: 1 } },
  };
  const count = (title: string, description: string, expr: string, color: string) =>
    new stat.PanelBuilder()
      .title(title)
      .description(description)
      .datasource(DS)
      .withTarget(q(expr))
      .thresholds(thresholds([[null, 'green'], [1, color]]))
      .colorMode(common.BigValueColorMode.Background)
      .graphMode(common.BigValueGraphMode.None)
      .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']))
      .height(5)
      .span(4);
  return new dashboard.RowBuilder('Overview')
    .withPanel(
      new stat.PanelBuilder()
        .title('Overall state')
        .description('Failing when any check of the deployment fails (its findings are on the auditor\'s /report).')
        .datasource(DS)
        .withTarget(q(`max by (deployment) (aegis_compliance_check_status{${D}, status="fail"})`, '{{deployment}}'))
        .mappings([stateMap])
        .thresholds(thresholds([[null, 'green'], [1, 'red']]))
        .colorMode(common.BigValueColorMode.Background)
        .graphMode(common.BigValueGraphMode.None)
        .textMode(common.BigValueTextMode.ValueAndName)
        .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']))
        .height(5)
        .span(8),
    )
    .withPanel(count('Checks failing', 'Checks whose latest run found problems.', `count(aegis_compliance_check_status{${D}, status="fail"} == 1) or vector(0)`, 'red'))
    .withPanel(
      count(
        'Checks not evaluated',
        'Checks whose latest run ended in error (source down, timeout, bad data) or was skipped (source not configured): the controls they prove are unverified.',
        `count(aegis_compliance_check_status{${D}, status=~"error|skipped"} == 1) or vector(0)`,
        'orange',
      ),
    )
    .withPanel(count('Open findings', 'Findings of the latest runs that fail their checks (not waived, not info).', `sum(aegis_compliance_findings{${D}}) or vector(0)`, 'red'))
    .withPanel(
      new stat.PanelBuilder()
        .title('Checks passing')
        .datasource(DS)
        .withTarget(q(`count(aegis_compliance_check_status{${D}, status="pass"} == 1) or vector(0)`))
        .colorMode(common.BigValueColorMode.Value)
        .graphMode(common.BigValueGraphMode.None)
        .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']))
        .height(5)
        .span(4),
    )
    .withPanel(
      new table.PanelBuilder()
        .title('Checks by status and severity')
        .description('The latest status of every check, with its own severity (check_severity).')
        .datasource(DS)
        .withTarget(instant(`aegis_compliance_check_status{${D}} == 1`))
        .withTransformation({ id: 'organize', options: { excludeByName: { Time: true, Value: true, __name__: true, job: true }, indexByName: { deployment: 0, check: 1, check_severity: 2, status: 3 } } })
        .overrideByName('status', [
          { id: 'mappings', value: [{ type: 'value', options: { pass: { color: 'green', index: 0 }, fail: { color: 'red', index: 1 }, error: { color: 'orange', index: 2 }, skipped: { color: 'text', index: 3 } } }] },
          { id: 'custom.cellOptions', value: { type: 'color-background' } },
        ])
        .height(10)
        .span(14),
    )
    .withPanel(
      new bargauge.PanelBuilder()
        .title('Checks by status and check severity')
        .datasource(DS)
        .withTarget(q(`sum by (status, check_severity) (aegis_compliance_check_status{${D}})`, '{{check_severity}} {{status}}'))
        .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']))
        .orientation(common.VizOrientation.Horizontal)
        .height(10)
        .span(10),
    );
}

function findings(): dashboard.RowBuilder {
  return new dashboard.RowBuilder('Findings and freshness')
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Findings over time')
        .description('Failing findings of each check\'s latest run.')
        .datasource(DS)
        .withTarget(q(`sum by (deployment, check) (aegis_compliance_findings{${D}})`, '{{deployment}} {{check}}'))
        .stacking(new common.StackingConfigBuilder().mode(common.StackingMode.Normal))
        .fillOpacity(20)
        .min(0)
        .height(9)
        .span(12),
    )
    .withPanel(
      new bargauge.PanelBuilder()
        .title('Time since last success per check')
        .description('Since each check was last evaluated (pass or fail); a check never evaluated is not shown. Checks page as stale when this grows past two runs.')
        .datasource(DS)
        .withTarget(q(`time() - (aegis_compliance_check_last_success_timestamp_seconds{${D}} > 0)`, '{{deployment}} {{check}}'))
        .unit('s')
        .reduceOptions(new common.ReduceDataOptionsBuilder().calcs(['lastNotNull']))
        .orientation(common.VizOrientation.Horizontal)
        .thresholds(thresholds([[null, 'green'], [3600, 'orange'], [10800, 'red']]))
        .height(9)
        .span(12),
    );
}

function sources(): dashboard.RowBuilder {
  return new dashboard.RowBuilder('Sources and runs')
    .withPanel(
      new statetimeline.PanelBuilder()
        .title('Sources up')
        .description('Whether each source answered in the latest run that used it.')
        .datasource(DS)
        .withTarget(q(`aegis_compliance_source_up{${D}}`, '{{deployment}} {{source}}'))
        .mappings([{ type: dashboard.MappingType.ValueToText, options: { '0': { text: 'down', color: 'red', index: 0 }, '1': { text: 'up', color: 'green', index: 1 } } }])
        .height(8)
        .span(12),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Source errors')
        .description('Source failures seen by checks, by source and reason.')
        .datasource(DS)
        .withTarget(q(`sum by (deployment, source, reason) (increase(aegis_compliance_source_errors_total{${D}}[$__rate_interval]))`, '{{deployment}} {{source}} {{reason}}'))
        .min(0)
        .height(8)
        .span(12),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Run durations')
        .description('Duration of the latest run of each check.')
        .datasource(DS)
        .withTarget(q(`aegis_compliance_check_duration_seconds{${D}}`, '{{deployment}} {{check}}'))
        .unit('s')
        .min(0)
        .height(8)
        .span(12),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Runs by outcome')
        .description('pass, fail (findings), error (a check could not be evaluated), aborted (the run failed before its checks reported).')
        .datasource(DS)
        .withTarget(q(`sum by (deployment, outcome) (increase(aegis_compliance_runs_total{${D}}[$__rate_interval]))`, '{{deployment}} {{outcome}}'))
        .min(0)
        .height(8)
        .span(12),
    );
}

function receiptChain(): dashboard.RowBuilder {
  return new dashboard.RowBuilder('Receipt chain')
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Rows verified')
        .description('Audit rows of the chain verified so far (up to the checkpoint), and rows verified for the first time by the latest run.')
        .datasource(DS)
        .withTarget(q(`aegis_compliance_receipt_chain_verified_rows{${D}}`, '{{deployment}} verified so far', 'A'))
        .withTarget(q(`aegis_compliance_receipt_rows_verified{${D}}`, '{{deployment}} verified by the latest run', 'B'))
        .min(0)
        .height(8)
        .span(12),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Verification lag')
        .description('Rows after the checkpoint not yet verified (a pass that continues next run), and the age of the oldest verification of any row.')
        .datasource(DS)
        .withTarget(q(`aegis_compliance_receipt_rows_unverified{${D}}`, '{{deployment}} rows not yet verified', 'A'))
        .withTarget(q(`aegis_compliance_receipt_oldest_verification_age_seconds{${D}}`, '{{deployment}} oldest verification age', 'B'))
        .overrideByQuery('B', [{ id: 'unit', value: 's' }, { id: 'custom.axisPlacement', value: 'right' }])
        .min(0)
        .height(8)
        .span(12),
    );
}

function auditor(): dashboard.RowBuilder {
  return new dashboard.RowBuilder('Auditor')
    .withPanel(
      new table.PanelBuilder()
        .title('Daemons')
        .description('Every aegis-audit daemon scraped for the deployment: version, and whether it holds the leader lock (runs checks) or stands by.')
        .datasource(DS)
        .withTarget(instant(`aegis_compliance_build_info{${D}} * on (deployment, instance, job) group_left aegis_compliance_leader`))
        .withTransformation({ id: 'organize', options: { excludeByName: { Time: true, __name__: true }, renameByName: { Value: 'leader' } } })
        .height(8)
        .span(6),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Memory')
        .datasource(DS)
        .withTarget(q(`process_resident_memory_bytes and on (instance, job) aegis_compliance_build_info{${D}}`, '{{instance}} resident', 'A'))
        .withTarget(q(`nodejs_heap_size_used_bytes and on (instance, job) aegis_compliance_build_info{${D}}`, '{{instance}} heap used', 'B'))
        .unit('bytes')
        .min(0)
        .height(8)
        .span(6),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Event-loop lag (p99)')
        .description('A daemon whose event loop lags serves scrapes late; long CPU-bound work belongs in workers.')
        .datasource(DS)
        .withTarget(q(`nodejs_eventloop_lag_p99_seconds and on (instance, job) aegis_compliance_build_info{${D}}`, '{{instance}}'))
        .unit('s')
        .min(0)
        .height(8)
        .span(6),
    )
    .withPanel(
      new timeseries.PanelBuilder()
        .title('Config reloads')
        .description('SIGHUP reloads by outcome: a failure kept the running config (the log says why).')
        .datasource(DS)
        .withTarget(q(`sum by (deployment, outcome) (increase(aegis_compliance_config_reloads_total{${D}}[$__rate_interval]))`, '{{deployment}} {{outcome}}'))
        .min(0)
        .height(8)
        .span(6),
    );
}

export function buildDashboard(): dashboard.Dashboard {
  return new dashboard.DashboardBuilder('Aegis compliance')
    .uid(DASHBOARD_UID)
    .description('aegis-audit: the compliance state of Aegis deployments, the checks behind it, and the auditor itself.')
    .tags(['aegis', 'compliance', 'aegis-audit'])
    .editable()
    .tooltip(dashboard.DashboardCursorSync.Crosshair)
    .refresh('1m')
    .time({ from: 'now-24h', to: 'now' })
    .timezone('browser')
    .withVariable(new dashboard.DatasourceVariableBuilder('datasource').label('Data source').type('prometheus'))
    .withVariable(
      new dashboard.QueryVariableBuilder('deployment')
        .label('Deployment')
        .datasource(DS)
        .query('label_values(aegis_compliance_build_info, deployment)')
        .definition('label_values(aegis_compliance_build_info, deployment)')
        .refresh(dashboard.VariableRefresh.OnTimeRangeChanged)
        .sort(dashboard.VariableSort.AlphabeticalAsc)
        .multi(true)
        .includeAll(true)
        .allValue('.+'),
    )
    .withRow(overview())
    .withRow(findings())
    .withRow(sources())
    .withRow(receiptChain())
    .withRow(auditor())
    .build();
}

/** The dashboard as written to dashboards/aegis-compliance.json. */
export function dashboardJson(): string {
  return `${JSON.stringify(buildDashboard(), null, 2)}\n`;
}

if (require.main === module) {
  const out = join(__dirname, '..', '..', 'dashboards', 'aegis-compliance.json');
  writeFileSync(out, dashboardJson());
  // eslint-disable-next-line no-console
  console.log(`wrote ${out}`);
}
