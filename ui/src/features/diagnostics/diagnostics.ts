// Diagnostics in words: the core sends a service and a finding as codes, with the specifics in
// `detail`; this module words them. Pure, so it is tested without a window.
import { locale, tn, translate, type Locale } from "../../lib/i18n/index.svelte";
import type { Diagnosis, Finding, Service } from "../../lib/ipc";

/** Findings whose words take `detail` in, so it is not shown again beneath them. */
const DETAIL_IN_WORDS: ReadonlySet<Finding> = new Set<Finding>([
  "storage_not_public",
  "storage_not_public_s3_only",
  "retention_outputs_kept",
  "billed_differs",
]);

export interface DiagnosisText {
  service: string;
  finding: string;
  /** The specifics (an address, an error), when the finding's words do not already carry them. */
  detail: string | null;
}

export function diagnosisText(diagnosis: Diagnosis, target: Locale = locale()): DiagnosisText {
  const service: `diagnostics.service.${Service}` = `diagnostics.service.${diagnosis.service}`;
  return {
    service: translate(target, service),
    finding: findingText(diagnosis, target),
    detail: diagnosis.detail && !DETAIL_IN_WORDS.has(diagnosis.finding) ? diagnosis.detail : null,
  };
}

/** A `YYYY-MM-DD` day in the creator's language; as given when it is not one. */
function formatDay(day: string, target: Locale): string {
  const date = new Date(`${day}T00:00:00Z`);
  if (Number.isNaN(date.getTime())) return day;
  return new Intl.DateTimeFormat(target, { dateStyle: "long", timeZone: "UTC" }).format(date);
}

function findingText({ finding, detail }: Diagnosis, target: Locale): string {
  // The detail is how many trainings' outputs fal still keeps, and the last day it keeps them.
  if (finding === "retention_outputs_kept") {
    const [count, until] = detail.split(" ");
    return tn("diagnostics.outputsKept", Number(count), target, { until: formatDay(until ?? "", target) });
  }
  if (finding === "billed_differs") return tn("diagnostics.billedDiffers", Number(detail), target);
  const key: `diagnostics.finding.${typeof finding}` = `diagnostics.finding.${finding}`;
  return translate(target, key, { detail });
}
