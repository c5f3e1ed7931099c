/**
 * JSON with comments and trailing commas (wrangler.jsonc) as plain JSON: `//` and `/* *\/`
 * comments and commas before `}` or `]` are dropped outside strings; everything else is kept, so
 * JSON.parse reports any other mistake at the position it would have in the file.
 */
export function stripJsonc(text: string): string {
  let out = "";
  let index = 0;
  while (index < text.length) {
    const char = text[index] as string;
    if (char === '"') {
      const end = stringEnd(text, index);
      out += text.slice(index, end);
      index = end;
    } else if (text.startsWith("//", index)) {
      const end = text.indexOf("\n", index);
      index = end === -1 ? text.length : end;
    } else if (text.startsWith("/*", index)) {
      const end = text.indexOf("*/", index + 2);
      // keep line breaks so JSON.parse's positions still point at the right line
      const comment = text.slice(index, end === -1 ? text.length : end + 2);
      out += comment.replace(/[^\n]/g, " ");
      index = end === -1 ? text.length : end + 2;
    } else if (char === "," && /^\s*[}\]]/.test(withoutComments(text.slice(index + 1)))) {
      out += " ";
      index += 1;
    } else {
      out += char;
      index += 1;
    }
  }
  return out;
}

/** The index just past the string literal that starts at `start` (a `"`). */
function stringEnd(text: string, start: number): number {
  let index = start + 1;
  while (index < text.length) {
    if (text[index] === "\\") index += 2;
    else if (text[index] === '"') return index + 1;
    else index += 1;
  }
  return text.length;
}

/** The start of `text` with leading whitespace and comments removed (to look past them). */
function withoutComments(text: string): string {
  let rest = text;
  for (;;) {
    const trimmed = rest.trimStart();
    if (trimmed.startsWith("//")) {
      const end = trimmed.indexOf("\n");
      rest = end === -1 ? "" : trimmed.slice(end);
    } else if (trimmed.startsWith("/*")) {
      const end = trimmed.indexOf("*/");
      rest = end === -1 ? "" : trimmed.slice(end + 2);
    } else {
      return trimmed;
    }
  }
}
