import { describe, expect, it } from "vitest";
import { constantTimeEquals, isHeaderSafe } from "../../src/core/secrets.js";

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

describe("isHeaderSafe", () => {
  it("takes printable ASCII with spaces and tabs inside", () => {
    expect(isHeaderSafe("AZaz09-._~+/= !\"#$%&'()*,:;<>?@[\\]^`{|}")).toBe(true);
    expect(isHeaderSafe("two words\tand a tab")).toBe(true);
  });

  it("refuses what no client can put in a header", () => {
    for (const secret of [
      "pässwörd",
      "s3cret-Ω",
      "key🔑",
      "s3\0cret",
      "s3\ncret",
      "s3\rcret",
      "s3\x7fcret",
    ]) {
      expect(isHeaderSafe(secret), JSON.stringify(secret)).toBe(false);
    }
  });
});
