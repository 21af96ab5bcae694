// Go RE2 syntax, which node-problem-detector rule patterns are written in,
// translated to a JavaScript RegExp (compiled with the "u" flag) that matches
// the same strings. Where the two differ, the translation spells out Go's
// meaning: `.` never matches "\n" unless (?s) (JS also excludes "\r" and the
// Unicode line separators), `^`/`$` are start/end of text, or of a line
// ("\n" only) under (?m), and the flags (?i) (?m) (?s) apply per group.
// What RE2 rejects (lookaround, backreferences) is rejected here too; (?U)
// and flags set in the middle of a group are not supported.

export interface Re2Translation {
  /** JS source for `new RegExp(source, "u")` */
  source: string;
  /** whether a match can contain a "\n", i.e. span lines of a multi-line buffer */
  crossesLines: boolean;
  /** whether it anchors at the start of the whole text (`^` without (?m), or \A) */
  anchorsText: boolean;
}

interface Flags {
  i: boolean;
  m: boolean;
  s: boolean;
}

interface Scope {
  flags: Flags;
  /** what to emit before the group's ")": one ")" per inline flag group opened at its start */
  closers: string;
  /** output length right after the group opened: inline flags are supported only there */
  start: number;
}

/** RE2's limit on counted repetition. */
const MAX_REPEAT = 1000;
const TEXT_START = "(?<![\\s\\S])";
const TEXT_END = "(?![\\s\\S])";
const LINE_START = "(?<![^\\n])";
const LINE_END = "(?![^\\n])";
/** Characters a "u" RegExp requires escaped to be literal, outside and inside a class. */
const SYNTAX = new Set("^$\\.*+?()[]{}|/");
const CLASS_SYNTAX = new Set("\\]-^[");
const NEWLINE = 10;

/** ASCII classes of [[:name:]], as code point ranges. */
const POSIX: Record<string, Array<[number, number]>> = {
  alnum: [[0x30, 0x39], [0x41, 0x5a], [0x61, 0x7a]],
  alpha: [[0x41, 0x5a], [0x61, 0x7a]],
  ascii: [[0x00, 0x7f]],
  blank: [[0x09, 0x09], [0x20, 0x20]],
  cntrl: [[0x00, 0x1f], [0x7f, 0x7f]],
  digit: [[0x30, 0x39]],
  graph: [[0x21, 0x7e]],
  lower: [[0x61, 0x7a]],
  print: [[0x20, 0x7e]],
  punct: [[0x21, 0x2f], [0x3a, 0x40], [0x5b, 0x60], [0x7b, 0x7e]],
  space: [[0x09, 0x0d], [0x20, 0x20]],
  upper: [[0x41, 0x5a]],
  word: [[0x30, 0x39], [0x41, 0x5a], [0x61, 0x7a], [0x5f, 0x5f]],
  xdigit: [[0x30, 0x39], [0x41, 0x46], [0x61, 0x66]],
};

function codePoint(cp: number): string {
  return `\\u{${cp.toString(16)}}`;
}

/** One element of a character class: a single character (with its code point) or a set such as \d. */
interface ClassAtom {
  source: string;
  code?: number;
  /** for sets: whether the set holds "\n" */
  newline?: boolean;
}

class Translator {
  #pos = 0;
  #out = "";
  readonly #scopes: Scope[] = [{ flags: { i: false, m: false, s: false }, closers: "", start: 0 }];
  #crossesLines = false;
  #anchorsText = false;

  constructor(readonly pattern: string) {}

  translate(): Re2Translation {
    while (this.#pos < this.pattern.length) this.#step();
    if (this.#scopes.length > 1) this.#fail("missing )");
    this.#out += this.#scopes[0]!.closers;
    return { source: this.#out, crossesLines: this.#crossesLines, anchorsText: this.#anchorsText };
  }

  #fail(what: string): never {
    throw new Error(`${what} at offset ${this.#pos} of ${JSON.stringify(this.pattern)}`);
  }

  get #flags(): Flags {
    return this.#scopes.at(-1)!.flags;
  }

  #step(): void {
    const p = this.pattern;
    const c = p[this.#pos]!;
    switch (c) {
      case "\\":
        this.#out += this.#escape();
        return;
      case "[":
        this.#out += this.#class();
        return;
      case "(":
        this.#open();
        return;
      case ")":
        this.#close();
        return;
      case ".":
        if (this.#flags.s) this.#crossesLines = true;
        this.#out += this.#flags.s ? "[\\s\\S]" : "[^\\n]";
        break;
      case "^":
        if (!this.#flags.m) this.#anchorsText = true;
        this.#out += this.#flags.m ? LINE_START : TEXT_START;
        break;
      case "$":
        this.#out += this.#flags.m ? LINE_END : TEXT_END;
        break;
      case "{": {
        const repeat = /^\{(\d+)(?:,(\d*))?\}/.exec(p.slice(this.#pos));
        if (!repeat) {
          // Not a repetition: RE2 reads the brace literally.
          this.#out += "\\{";
          break;
        }
        if (Number(repeat[1]) > MAX_REPEAT || Number(repeat[2] || 0) > MAX_REPEAT) this.#fail(`repetition over ${MAX_REPEAT}`);
        this.#out += repeat[0];
        this.#pos += repeat[0].length;
        return;
      }
      case "}":
      case "]":
        this.#out += `\\${c}`;
        break;
      case "\n":
        this.#crossesLines = true;
        this.#out += "\\n";
        break;
      default:
        // Quantifiers and "|" mean the same in both; anything else is a literal.
        this.#out += c;
    }
    this.#pos++;
  }

  /** A group opener: (re), (?:re), (?P<name>re), (?<name>re), (?flags:re), or inline (?flags). */
  #open(): void {
    const p = this.pattern;
    if (p[this.#pos + 1] !== "?") {
      this.#out += "(";
      this.#pos++;
      this.#push(this.#flags);
      return;
    }
    const rest = p.slice(this.#pos + 2);
    if (/^(?:=|!|<=|<!)/.test(rest)) this.#fail("lookaround is not RE2 syntax");
    const named = /^P?<(\w+)>/.exec(rest);
    if (named) {
      this.#out += `(?<${named[1]}>`;
      this.#pos += 2 + named[0].length;
      this.#push(this.#flags);
      return;
    }
    const spec = /^([imsU]*)(?:-([imsU]*))?([:)])/.exec(rest);
    if (!spec || (spec[2] !== undefined && spec[2] === "") || (spec[1] === "" && spec[2] === undefined && spec[3] === ")")) {
      this.#fail("invalid group or flags");
    }
    if (`${spec[1]}${spec[2] ?? ""}`.includes("U")) this.#fail("the (?U) flag is not supported");
    const flags = { ...this.#flags };
    for (const f of spec[1]!) flags[f as keyof Flags] = true;
    for (const f of spec[2] ?? "") flags[f as keyof Flags] = false;
    const caseChange = flags.i === this.#flags.i ? "" : flags.i ? "i" : "-i";
    this.#pos += 2 + spec[0].length;
    if (spec[3] === ":") {
      this.#out += `(?${caseChange}:`;
      this.#push(flags);
      return;
    }
    // Inline flags last until the end of the enclosing group; at its start that is the whole group.
    const scope = this.#scopes.at(-1)!;
    if (scope.start !== this.#out.length) this.#fail("flags in the middle of a group are not supported");
    scope.flags = flags;
    if (caseChange) {
      this.#out += `(?${caseChange}:`;
      scope.closers += ")";
    }
    scope.start = this.#out.length;
  }

  #push(flags: Flags): void {
    this.#scopes.push({ flags: { ...flags }, closers: "", start: this.#out.length });
  }

  #close(): void {
    if (this.#scopes.length === 1) this.#fail("unexpected )");
    this.#out += `${this.#scopes.pop()!.closers})`;
    this.#pos++;
  }

  /** An escape outside a class. */
  #escape(): string {
    const atom = this.#escapeAtom(false);
    if (atom.code !== undefined ? atom.code === NEWLINE : atom.newline === true) this.#crossesLines = true;
    return atom.source;
  }

  /** An escape at #pos (the backslash), inside a class or not. */
  #escapeAtom(inClass: boolean): ClassAtom {
    const p = this.pattern;
    this.#pos++;
    const c = p[this.#pos];
    if (c === undefined) this.#fail("trailing backslash");
    this.#pos++;
    switch (c) {
      case "d":
      case "w":
      case "S":
        return { source: `\\${c}`, newline: false };
      case "D":
      case "W":
      case "s":
        return { source: `\\${c}`, newline: true };
      case "a":
        return { source: codePoint(7), code: 7 };
      case "f":
        return { source: "\\f", code: 12 };
      case "t":
        return { source: "\\t", code: 9 };
      case "n":
        return { source: "\\n", code: NEWLINE };
      case "r":
        return { source: "\\r", code: 13 };
      case "v":
        return { source: "\\v", code: 11 };
      case "x": {
        const hex = /^(?:\{([0-9A-Fa-f]{1,6})\}|([0-9A-Fa-f]{2}))/.exec(p.slice(this.#pos));
        if (!hex) this.#fail("invalid \\x escape");
        this.#pos += hex[0].length;
        const cp = parseInt(hex[1] ?? hex[2]!, 16);
        if (cp > 0x10ffff) this.#fail("invalid \\x escape");
        return { source: codePoint(cp), code: cp };
      }
      case "p":
      case "P":
        return this.#unicodeClass(c === "P");
      case "Q": {
        if (inClass) this.#fail("\\Q in a class is not supported");
        const end = p.indexOf("\\E", this.#pos);
        const literal = end < 0 ? p.slice(this.#pos) : p.slice(this.#pos, end);
        this.#pos = end < 0 ? p.length : end + 2;
        const source = [...literal].map((ch) => (SYNTAX.has(ch) ? `\\${ch}` : ch === "\n" ? "\\n" : ch)).join("");
        return { source, newline: literal.includes("\n") };
      }
    }
    if (!inClass) {
      if (c === "A") {
        this.#anchorsText = true;
        return { source: TEXT_START, newline: false };
      }
      if (c === "z") return { source: TEXT_END, newline: false };
      if (c === "b" || c === "B") return { source: `\\${c}`, newline: false };
    }
    if (c >= "0" && c <= "7") {
      // Octal: \0, or \1 to \7 followed by more octal digits; a lone \1 would be a backreference, which RE2 lacks.
      const octal = /^[0-7]{0,2}/.exec(p.slice(this.#pos))![0];
      if (c !== "0" && octal === "") this.#fail("backreferences are not RE2 syntax");
      this.#pos += octal.length;
      const cp = parseInt(c + octal, 8);
      return { source: codePoint(cp), code: cp };
    }
    if (c < "\x80" && !/[0-9A-Za-z]/.test(c)) {
      const needs = inClass ? CLASS_SYNTAX.has(c) : SYNTAX.has(c);
      return { source: needs ? `\\${c}` : c, code: c.charCodeAt(0) };
    }
    this.#fail(`invalid escape \\${c}`);
  }

  /** \pL, \p{Greek}, \p{^Greek}, \PL: general categories keep their name, anything else is a script. */
  #unicodeClass(negated: boolean): ClassAtom {
    const p = this.pattern;
    let name: string;
    if (p[this.#pos] === "{") {
      const end = p.indexOf("}", this.#pos);
      if (end < 0) this.#fail("missing } in \\p{...}");
      name = p.slice(this.#pos + 1, end);
      this.#pos = end + 1;
    } else {
      name = p[this.#pos] ?? this.#fail("missing name after \\p");
      this.#pos++;
    }
    if (name.startsWith("^")) {
      negated = !negated;
      name = name.slice(1);
    }
    if (!/^\w+$/.test(name)) this.#fail("invalid Unicode class name");
    const property = /^(?:[A-Z][a-z]?|Any)$/.test(name) ? name : `Script=${name}`;
    // Only the control and "any" classes hold "\n".
    const holdsNewline = ["Any", "C", "Cc"].includes(name);
    return { source: `\\${negated ? "P" : "p"}{${property}}`, newline: negated ? !holdsNewline : holdsNewline };
  }

  /** A bracketed class, [...] or [^...]. */
  #class(): string {
    const p = this.pattern;
    this.#pos++;
    const negated = p[this.#pos] === "^";
    if (negated) this.#pos++;
    let body = "";
    /** whether the members listed hold "\n" */
    let newline = false;
    let first = true;
    for (;;) {
      const c = p[this.#pos];
      if (c === undefined) this.#fail("missing ]");
      // A "]" first in the class is a literal, as in RE2.
      if (c === "]" && !first) {
        this.#pos++;
        break;
      }
      first = false;
      const posix = /^\[:(\^?)(\w+):\]/.exec(p.slice(this.#pos));
      if (posix) {
        const ranges = POSIX[posix[2]!];
        if (!ranges) this.#fail(`unknown class [:${posix[2]}:]`);
        if (posix[1]) this.#fail("negated POSIX classes are not supported");
        for (const [lo, hi] of ranges) {
          body += lo === hi ? codePoint(lo) : `${codePoint(lo)}-${codePoint(hi)}`;
          newline ||= lo <= NEWLINE && NEWLINE <= hi;
        }
        this.#pos += posix[0].length;
        continue;
      }
      const lo = this.#classAtom();
      if (lo.code !== undefined && p[this.#pos] === "-" && p[this.#pos + 1] !== undefined && p[this.#pos + 1] !== "]") {
        this.#pos++;
        const hi = this.#classAtom();
        if (hi.code === undefined || hi.code < lo.code) this.#fail("invalid class range");
        body += `${lo.source}-${hi.source}`;
        newline ||= lo.code <= NEWLINE && NEWLINE <= hi.code;
        continue;
      }
      body += lo.source;
      newline ||= lo.code !== undefined ? lo.code === NEWLINE : lo.newline === true;
    }
    // A negated class holds "\n" unless "\n" is among what it excludes.
    if (negated !== newline) this.#crossesLines = true;
    return `[${negated ? "^" : ""}${body}]`;
  }

  #classAtom(): ClassAtom {
    const p = this.pattern;
    if (p[this.#pos] === "\\") return this.#escapeAtom(true);
    const cp = p.codePointAt(this.#pos)!;
    const ch = String.fromCodePoint(cp);
    this.#pos += ch.length;
    return { source: CLASS_SYNTAX.has(ch) ? `\\${ch}` : ch === "\n" ? "\\n" : ch, code: cp };
  }
}

/** Translates a Go RE2 pattern; throws an Error naming the problem for what RE2 rejects or this does not support. */
export function translateRe2(pattern: string): Re2Translation {
  return new Translator(pattern).translate();
}
