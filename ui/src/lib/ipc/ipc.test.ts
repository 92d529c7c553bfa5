import { describe, expect, it } from "vitest";

import { IpcError, toIpcError } from "./index";

describe("toIpcError", () => {
  it("keeps the code and message of an error report from Rust", () => {
    const error = toIpcError({ code: "not_found", message: "there is no avatar \"x\"" });
    expect(error).toBeInstanceOf(IpcError);
    expect(error.code).toBe("not_found");
    expect(error.message).toBe('there is no avatar "x"');
  });

  it("treats anything else as an internal error without losing its text", () => {
    expect(toIpcError("window closed").code).toBe("internal");
    expect(toIpcError("window closed").message).toBe("window closed");
    expect(toIpcError({ code: "made_up", message: "m" }).code).toBe("internal");
  });
});
