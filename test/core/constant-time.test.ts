import { describe, expect, it } from "vitest";
import { constantTimeEquals } from "../../src/core/constant-time.js";

describe("constantTimeEquals", () => {
  it("is true only for the same string", () => {
    expect(constantTimeEquals("s3cret", "s3cret")).toBe(true);
    expect(constantTimeEquals("s3creT", "s3cret")).toBe(false);
    expect(constantTimeEquals("x3cret", "s3cret")).toBe(false);
  });

  it("refuses a prefix, an extension and the empty string", () => {
    expect(constantTimeEquals("s3cre", "s3cret")).toBe(false);
    expect(constantTimeEquals("s3cret!", "s3cret")).toBe(false);
    // past the secret's end charCodeAt is NaN (0 after `|`): only the lengths tell these apart
    expect(constantTimeEquals("s3cret\0", "s3cret")).toBe(false);
    expect(constantTimeEquals("", "s3cret")).toBe(false);
    expect(constantTimeEquals("s3cret", "")).toBe(false);
  });

  it("compares every UTF-16 unit, outside ASCII too", () => {
    expect(constantTimeEquals("пароль🔑", "пароль🔑")).toBe(true);
    expect(constantTimeEquals("пароль🔒", "пароль🔑")).toBe(false);
    expect(constantTimeEquals("\u00e9", "e\u0301")).toBe(false);
  });
});
