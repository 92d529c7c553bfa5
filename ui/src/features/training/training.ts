// The training panel's logic without the DOM: which view a job calls for, which update wins,
// how the creator's advanced values are read, and how numbers are put into words.
import { locale, t, tn, translate, type Locale, type MessageKey } from "../../lib/i18n/index.svelte";
import type {
  JobFailure,
  JobState,
  JobStep,
  TrainingChoices,
  JobView,
  TrainingPlan,
  TrainingPreset,
  TrainingRequest,
  TrainingType,
} from "../../lib/ipc";
import { PRESETS } from "../avatars/presets";

/** What the panel shows: the choice before a run, the run itself, or how the last one ended. */
export type TrainingView = "setup" | "active" | "completed" | "failed" | "cancelled";

const VIEW_OF_STATE: Record<JobState, TrainingView> = {
  preparing: "active",
  submitting: "active",
  queued: "active",
  running: "active",
  downloading: "active",
  completed: "completed",
  failed: "failed",
  cancelled: "cancelled",
};

export function isActive(state: JobState): boolean {
  return VIEW_OF_STATE[state] === "active";
}

/** The view for the avatar's newest job; `retraining` shows the choice again after an ended run. */
export function viewOf(job: JobView | null, retraining = false): TrainingView {
  if (!job) return "setup";
  const view = VIEW_OF_STATE[job.state];
  return retraining && view !== "active" ? "setup" : view;
}

const time = (stamp: string): number => {
  const parsed = Date.parse(stamp);
  return Number.isNaN(parsed) ? 0 : parsed;
};

/**
 * The job to show after `incoming` arrived for some avatar: the avatar's newest job in its newest
 * known state. Events for other avatars, older jobs and stale states (an event overtaken by a
 * status reply, or the other way round) leave `current` as it is.
 */
export function newest(current: JobView | null, incoming: JobView, avatarId: string): JobView | null {
  if (incoming.avatar_id !== avatarId) return current;
  if (!current) return incoming;
  if (incoming.id === current.id) {
    if (isActive(incoming.state) && !isActive(current.state)) return current; // a final state stays final
    return time(incoming.updated_at) >= time(current.updated_at) ? incoming : current;
  }
  return time(incoming.created_at) >= time(current.created_at) ? incoming : current;
}

/** Whether the shown job moved to another state (or another job), so the avatar's status did too. */
export function stateChanged(before: JobView | null, after: JobView | null): boolean {
  if (!after) return false;
  return !before || before.id !== after.id || before.state !== after.state;
}

/** A stored job's preset, if it is one the panel offers. */
export function isPreset(value: string): value is TrainingPreset {
  return (PRESETS as readonly string[]).includes(value);
}

/** A job's progress as a whole percentage, 0–100 whatever the backend sent. */
export function percent(progress: number): number {
  if (!Number.isFinite(progress)) return 0;
  return Math.min(100, Math.max(0, Math.round(progress)));
}

export function formatPercent(progress: number, target: Locale = locale()): string {
  return new Intl.NumberFormat(target, { style: "percent", maximumFractionDigits: 0 }).format(percent(progress) / 100);
}

/** The place in fal's queue counted from 1 (fal counts from 0); null unless queued. */
export function queuePlace(job: JobView): number | null {
  if (job.state !== "queued" || job.queue_position === null) return null;
  return Math.max(0, job.queue_position) + 1;
}

export function formatCost(usd: number, target: Locale = locale()): string {
  return new Intl.NumberFormat(target, { style: "currency", currency: "USD", minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(usd);
}

/** "3–5 minutes", or "5 minutes" when both ends meet; the plural follows the upper end. */
export function formatMinutes(min: number, max: number, target: Locale = locale()): string {
  return min === max ? tn("training.minutes", max, target) : tn("training.minutesRange", max, target, { from: min });
}

export function formatLearningRate(rate: number, target: Locale = locale()): string {
  return new Intl.NumberFormat(target, { maximumSignificantDigits: 6 }).format(rate);
}

// Compared to the cent, as the core does when it refuses a start over the budget.
const cents = (usd: number): number => Math.round(usd * 100);

const PRICE_SOURCES: Record<string, MessageKey> = {
  fal: "training.priceFal",
  static: "training.priceStatic",
};

const STORAGE_NOTICES: Record<string, MessageKey> = {
  s3_not_public: "training.storageNotice.s3_not_public",
};

/** The estimate of a plan, line by line, in the creator's language. */
export interface EstimateText {
  steps: string;
  learningRate: string | null;
  photos: string;
  time: string;
  cost: string;
  /** Where the cost came from: fal's price for the account, or the built-in estimate. */
  priceSource: string | null;
  /** How a built-in estimate was reached; none otherwise. */
  note: string | null;
  /** This month's spending against the budget, when a budget is set. */
  budget: string | null;
  /** Why the start will be refused, when it would take the month past the budget. */
  budgetWarning: string | null;
  /** Why the training set does not go where the settings suggest. */
  storageNotice: string | null;
}

export function estimateText(plan: TrainingPlan, target: Locale = locale()): EstimateText {
  const priceSource = PRICE_SOURCES[plan.price_source];
  // Test runs are free, so the budget says nothing about them.
  const budget = plan.test_mode ? null : plan.monthly_budget_usd;
  const total = plan.spent_this_month_usd + plan.cost_usd;
  const notice = plan.storage_notice === null ? undefined : STORAGE_NOTICES[plan.storage_notice];
  return {
    steps: tn("training.steps", plan.steps, target),
    learningRate:
      plan.learning_rate === null
        ? null
        : translate(target, "training.learningRateValue", { rate: formatLearningRate(plan.learning_rate, target) }),
    photos: tn("training.photos", plan.photos, target),
    time: translate(target, "training.time", { time: formatMinutes(plan.min_minutes, plan.max_minutes, target) }),
    cost: plan.test_mode
      ? translate(target, "training.noCost")
      : translate(target, "training.cost", { cost: formatCost(plan.cost_usd, target) }),
    priceSource: plan.price_unverified
      ? translate(target, "training.priceUnverified", {
          fal: formatCost(plan.cost_usd_fal ?? 0, target),
          table: formatCost(plan.cost_usd_table ?? 0, target),
        })
      : priceSource
        ? translate(target, priceSource)
        : null,
    note: plan.price_source === "static" ? translate(target, `training.priceBasis.${plan.training_type}`) : null,
    budget:
      budget === null
        ? null
        : translate(target, "training.monthBudget", {
            spent: formatCost(plan.spent_this_month_usd, target),
            budget: formatCost(budget, target),
          }),
    budgetWarning:
      budget !== null && cents(total) > cents(budget)
        ? translate(target, "training.overBudget", { total: formatCost(total, target), budget: formatCost(budget, target) })
        : null,
    // A code this UI does not know yet is shown as it came rather than hidden.
    storageNotice: notice ? translate(target, notice) : plan.storage_notice,
  };
}

/** The question asked before a start: what a paid run costs and takes, or that a test run is free. */
export function confirmText(plan: TrainingPlan, target: Locale = locale()): string {
  if (plan.test_mode) return translate(target, "training.confirmTest");
  return translate(target, "training.confirmPaid", {
    cost: formatCost(plan.cost_usd, target),
    time: formatMinutes(plan.min_minutes, plan.max_minutes, target),
  });
}

/** What a paid job cost: the cost confirmed before the start and, once fal's billing was read, what
 * fal billed. None for a test run or a job whose paid request never left the computer. */
export function jobCostText(job: JobView, target: Locale = locale()): string | null {
  if (job.test_mode || !job.paid_request) return null;
  const cost = formatCost(job.confirmed_cost_usd, target);
  return job.billed_cost_usd === null
    ? translate(target, "training.jobCost", { cost })
    : translate(target, "training.jobCostBilled", { cost, billed: formatCost(job.billed_cost_usd, target) });
}

/** How long an ended job took, in words. */
export function formatDuration(job: JobView, target: Locale = locale()): string | null {
  if (!job.finished_at) return null;
  const milliseconds = time(job.finished_at) - time(job.created_at);
  if (milliseconds <= 0) return null;
  if (milliseconds < 60_000) return translate(target, "training.tookUnderMinute");
  return tn("training.took", Math.round(milliseconds / 60_000), target);
}

/** Where a job is, in words: the backend sends a code with parameters (`JobStep`). */
export function stepText(job: JobView, target: Locale = locale()): string {
  const text = job.step ? stepWords(job.step, target) : translate(target, `jobState.${job.state}`);
  return job.test_mode ? translate(target, "jobStep.testMode", { text }) : text;
}

function stepWords(step: JobStep, target: Locale): string {
  switch (step.code) {
    case "packing":
      return translate(target, "jobStep.packing", { photos: step.photos });
    case "uploading":
      return translate(target, step.store === "s3" ? "jobStep.uploading.s3" : "jobStep.uploading.fal", {
        megabytes: new Intl.NumberFormat(target, { maximumFractionDigits: 1 }).format(step.megabytes),
      });
    case "queued":
      return step.place === null ? translate(target, "jobStep.queued") : translate(target, "jobStep.queuedAt", { place: step.place });
    case "training":
      return step.done === null || step.total === null
        ? translate(target, "jobStep.training")
        : translate(target, "jobStep.trainingSteps", { done: step.done, total: step.total });
    case "downloading":
      return translate(target, step.after_cancel ? "jobStep.downloadingAfterCancel" : "jobStep.downloading");
    case "retrying":
      return translate(target, `jobStep.retrying.${step.transfer}`);
    default:
      return translate(target, `jobStep.${step.code}`);
  }
}

/**
 * Why a job failed, in words: `jobFailure.<code>` (and `.<transfer>` for a transfer) filled with the
 * failure's parameters. The desktop notification words failures by the same rule from the same
 * dictionary (src-tauri/src/words.rs).
 */
export function failureText(failure: JobFailure | null, target: Locale = locale()): string {
  if (!failure) return translate(target, "training.failedUnknown");
  const params: Record<string, string | number> = {};
  for (const [name, value] of Object.entries(failure)) {
    if (name !== "code") params[name] = value === null ? "" : (value as string | number);
  }
  const key = "transfer" in failure ? `jobFailure.${failure.code}.${failure.transfer}` : `jobFailure.${failure.code}`;
  return translate(target, key as MessageKey, params).trim();
}

/** The step and learning-rate ranges the backend enforces. */
export type Ranges = Pick<TrainingChoices, "min_steps" | "max_steps" | "min_learning_rate" | "max_learning_rate">;

export type FieldProblem = "not_a_number" | "not_whole" | "out_of_range";

/** An advanced field: empty keeps the preset's value (null). */
export type Parsed = { value: number | null; problem: FieldProblem | null };

function parseNumber(text: string): number | null {
  // A comma is the decimal separator in Russian; accept it from anyone.
  const cleaned = text.trim().replace(/\s+/g, "").replace(",", ".");
  if (!/^[+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(cleaned)) return null;
  return Number(cleaned);
}

export function parseSteps(text: string, ranges: Ranges): Parsed {
  if (text.trim() === "") return { value: null, problem: null };
  const value = parseNumber(text);
  if (value === null) return { value: null, problem: "not_a_number" };
  if (!Number.isInteger(value)) return { value: null, problem: "not_whole" };
  if (value < ranges.min_steps || value > ranges.max_steps) return { value: null, problem: "out_of_range" };
  return { value, problem: null };
}

export function parseLearningRate(text: string, ranges: Ranges): Parsed {
  if (text.trim() === "") return { value: null, problem: null };
  const value = parseNumber(text);
  if (value === null) return { value: null, problem: "not_a_number" };
  if (value < ranges.min_learning_rate || value > ranges.max_learning_rate) return { value: null, problem: "out_of_range" };
  return { value, problem: null };
}

/** The advanced fields as the creator typed them. */
export interface TrainingForm {
  preset: TrainingPreset;
  steps: string;
  learningRate: string;
}

/** What to ask the backend for, or null while a field is wrong. The style trainer takes no rate. */
export function requestOf(form: TrainingForm, trainingType: TrainingType, ranges: Ranges): TrainingRequest | null {
  const steps = parseSteps(form.steps, ranges);
  const learningRate = trainingType === "portrait" ? parseLearningRate(form.learningRate, ranges) : { value: null, problem: null };
  if (steps.problem || learningRate.problem) return null;
  return { preset: form.preset, steps: steps.value, learningRate: learningRate.value };
}

/** The words for a field's problem, with the allowed range. */
export function stepsProblem(problem: FieldProblem, ranges: Ranges): string {
  return problem === "out_of_range"
    ? t("training.stepsRange", { min: ranges.min_steps, max: ranges.max_steps })
    : t("training.stepsWhole");
}

export function learningRateProblem(problem: FieldProblem, ranges: Ranges): string {
  return problem === "out_of_range"
    ? t("training.learningRateRange", {
        min: formatLearningRate(ranges.min_learning_rate),
        max: formatLearningRate(ranges.max_learning_rate),
      })
    : t("training.learningRateNumber");
}
