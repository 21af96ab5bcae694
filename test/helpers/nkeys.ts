// A fresh NATS user nkey: the public key goes into the server config, the
// seed into a file the publisher reads (nkey_seed_file).
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { createUser } from "@nats-io/nkeys";
import { makeTempDir } from "./cleanup.ts";

export interface UserNkey {
  readonly publicKey: string;
  readonly seedFile: string;
}

export function createUserNkey(): UserNkey {
  const user = createUser();
  const seedFile = join(makeTempDir("nkey"), "user.nk");
  // a trailing newline, as `nk -gen user` writes it
  writeFileSync(seedFile, `${new TextDecoder().decode(user.getSeed())}\n`, { mode: 0o600 });
  return { publicKey: user.getPublicKey(), seedFile };
}
