// SET key value [NX | XX] [GET] [EX s | PX ms | EXAT s | PXAT ms | KEEPTTL]. +OK only once the
// engine's write resolved: the store committed and the cache step ran, with the service's failure
// policy. NX and XX are conditional writes checked in the store's transaction; because an expired
// row is still a row in the store, the conditions (and GET, KEEPTTL) read first and then write on
// the condition "the key still has the version read" (or "is still absent"), retried when another
// write slipped between.
import type { WriteOptions } from '../../engine/api.js';
import { PreconditionFailedError } from '../../errors.js';
import { CommandError, syntaxError } from '../errors.js';
import { bulkOrNull, NULL, OK, type Reply } from '../replies.js';
import { rowOf } from '../values.js';
import { upper, type CommandContext } from './context.js';
import { holdReply, readLive, releaseReply, target } from './targets.js';

/** Compare-and-set rounds before giving up on a key other writers keep changing. */
const MAX_ATTEMPTS = 16;
/** Redis' own bound on an expiry, so that ms arithmetic never overflows. */
const MAX_EXPIRY_MS = 2 ** 52;

interface SetPlan {
  readonly condition: 'nx' | 'xx' | undefined;
  /** null: no expiry; 'keep': KEEPTTL; a number: the absolute wall-clock expiry. */
  readonly expiry: number | null | 'keep';
  readonly get: boolean;
}

export async function runSet(ctx: CommandContext, args: readonly Buffer[]): Promise<Reply> {
  const plan = parseSetOptions(args.slice(3), ctx.now());
  const actions = plan.get || plan.condition !== undefined || plan.expiry === 'keep' ? (['read', 'write'] as const) : (['write'] as const);
  const t = target(ctx, args[1]!, ...actions);
  const raw = args[2]!;

  if (plan.condition === undefined && !plan.get && plan.expiry !== 'keep') {
    await t.engine.write(t.key, rowOf(raw, plan.expiry));
    return OK;
  }
  if (plan.condition === 'nx' && !plan.get && plan.expiry !== 'keep') {
    // One round trip in the common case: the key was never written or was deleted.
    try {
      await t.engine.write(t.key, rowOf(raw, plan.expiry), { ifAbsent: true });
      return OK;
    } catch (error) {
      if (!(error instanceof PreconditionFailedError)) throw error;
    }
  }
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const { entry, live } = await readLive(ctx, t);
    // The old value's bytes are taken before the write: a SET refused for the budget writes nothing.
    const held = plan.get && live !== undefined ? live.value.length : 0;
    holdReply(ctx, held);
    const old = plan.get ? bulkOrNull(live?.value) : undefined;
    if ((plan.condition === 'nx' && live !== undefined) || (plan.condition === 'xx' && live === undefined)) return old ?? NULL;
    const expiresAt = plan.expiry === 'keep' ? (live?.expiresAt ?? null) : plan.expiry;
    const condition: WriteOptions = entry.found ? { ifVersion: entry.version } : { ifAbsent: true };
    try {
      await t.engine.write(t.key, rowOf(raw, expiresAt), condition);
      return old ?? OK;
    } catch (error) {
      releaseReply(ctx, held);
      if (!(error instanceof PreconditionFailedError)) throw error;
    }
  }
  throw new CommandError(`LOCKSTEP_E_PRECONDITION_FAILED the key changed under SET ${MAX_ATTEMPTS} times in a row; nothing was written, retry`);
}

function parseSetOptions(options: readonly Buffer[], now: number): SetPlan {
  let condition: SetPlan['condition'];
  let expiry: SetPlan['expiry'] = null;
  let expirySet = false;
  let get = false;
  for (let i = 0; i < options.length; i++) {
    const word = upper(options[i]!);
    if (word === 'NX' || word === 'XX') {
      if (condition !== undefined) throw syntaxError();
      condition = word === 'NX' ? 'nx' : 'xx';
    } else if (word === 'GET') {
      get = true;
    } else if (word === 'KEEPTTL') {
      if (expirySet) throw syntaxError();
      expirySet = true;
      expiry = 'keep';
    } else if (word === 'EX' || word === 'PX' || word === 'EXAT' || word === 'PXAT') {
      if (expirySet || i + 1 >= options.length) throw syntaxError();
      expirySet = true;
      expiry = expiryOf(word, options[++i]!.toString('latin1'), now);
    } else {
      throw syntaxError();
    }
  }
  return { condition, expiry, get };
}

function expiryOf(unit: 'EX' | 'PX' | 'EXAT' | 'PXAT', text: string, now: number): number {
  if (!/^(0|-?[1-9][0-9]{0,18})$/.test(text)) throw new CommandError('ERR value is not an integer or out of range');
  const n = Number(text);
  const invalid = new CommandError("ERR invalid expire time in 'set' command");
  if (!Number.isSafeInteger(n) || n <= 0) throw invalid;
  const ms = unit === 'EX' || unit === 'EXAT' ? n * 1000 : n;
  if (ms > MAX_EXPIRY_MS) throw invalid;
  return unit === 'EX' || unit === 'PX' ? now + ms : ms;
}
