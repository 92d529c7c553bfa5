import { beforeEach, describe, expect, it, vi } from "vitest";

const invoke = vi.fn();
const listen = vi.fn();
vi.mock("@tauri-apps/api/core", async (importOriginal) => ({
  ...(await importOriginal<typeof import("@tauri-apps/api/core")>()),
  invoke: (...args: unknown[]) => invoke(...args),
}));
vi.mock("@tauri-apps/api/event", () => ({ listen: (...args: unknown[]) => listen(...args) }));

import { backend, IpcError, onTrainingChange, toIpcError } from "./index";
import type { TrainingPlan } from "./index";

describe("training commands", () => {
  beforeEach(() => {
    invoke.mockReset();
    listen.mockReset();
  });

  it("send the avatar, preset and overrides with Tauri's argument names", async () => {
    invoke.mockResolvedValue(null);
    await backend.planTraining("a1", { preset: "fast", steps: 800, learningRate: null });
    expect(invoke).toHaveBeenLastCalledWith("plan_training", { avatarId: "a1", preset: "fast", steps: 800, learningRate: null });
    const plan = { avatar_id: "a1", preset: "quality", steps: 2500, learning_rate: 0.0001 } as unknown as TrainingPlan;
    await backend.startTraining(plan);
    expect(invoke).toHaveBeenLastCalledWith("start_training", { plan });
    await backend.trainingStatus("a1");
    expect(invoke).toHaveBeenLastCalledWith("training_status", { avatarId: "a1" });
    await backend.cancelTraining("a1");
    expect(invoke).toHaveBeenLastCalledWith("cancel_training", { avatarId: "a1" });
  });

  it("turn the new error codes into IpcErrors that keep them", async () => {
    for (const code of ["conflict", "wrong_key", "rejected", "remote_unavailable"]) {
      expect(toIpcError({ code, message: "m" }).code).toBe(code);
    }
    invoke.mockRejectedValue({ code: "conflict", message: "Anna is already training" });
    const failure = await backend.startTraining({} as TrainingPlan).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(IpcError);
    expect((failure as IpcError).code).toBe("conflict");
    expect((failure as IpcError).message).toBe("Anna is already training");
  });

  it("hand each training event's job to the listener", async () => {
    const unlisten = vi.fn();
    listen.mockResolvedValue(unlisten);
    const seen: unknown[] = [];
    const stop = await onTrainingChange((job) => seen.push(job));
    expect(listen).toHaveBeenCalledWith("training", expect.any(Function));
    const deliver = listen.mock.calls[0]?.[1] as (event: { payload: unknown }) => void;
    deliver({ payload: { id: "job-1" } });
    expect(seen).toEqual([{ id: "job-1" }]);
    expect(stop).toBe(unlisten);
  });
});
