// What a command reads and writes besides its arguments, injectable so tests run commands in-process.

export type Env = Readonly<Record<string, string | undefined>>;

export interface CommandIo {
  readonly env: Env;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

export const defaultIo: CommandIo = { env: process.env, stdout: process.stdout, stderr: process.stderr };
