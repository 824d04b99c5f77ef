// What a command handler gets: the service, the front's options, its connection's session, and a
// wall clock (data expiries are wall-clock times shared by every instance, as in the Keyv adapter).
import type { Reply } from '../replies.js';
import type { ResolvedRespOptions } from '../options.js';
import type { LockstepService } from '../service-port.js';
import type { Session } from '../session.js';
import type { ReplyBudget } from '../../service/reply-budget.js';
import type { QueryBudget } from '../query-budget.js';
import type { PurgeTracker } from '../purges.js';

export interface FrontInfo {
  readonly startedAt: number;
  /** Takes one command from the session's rate limit; an error reply when over it. */
  readonly throttle: (session: Session, remoteHost: string) => Reply | undefined;
  readonly port: number;
  connectedClients(): number;
  /** The values' bytes that replies hold across every connection (service/reply-budget.ts). */
  readonly replies: ReplyBudget;
  /** The unread request bytes of every connection (query-budget.ts). */
  readonly queries: QueryBudget;
  /** The deletes of expired rows that reads started and that are still running (purges.ts). */
  readonly purges: PurgeTracker;
}

/** What the command running on a connection holds of the front's reply budget; the connection gives it back once the reply is sent. */
export interface ReplyHold {
  bytes: number;
}

export interface CommandContext {
  readonly service: LockstepService;
  readonly options: ResolvedRespOptions;
  readonly session: Session;
  readonly front: FrontInfo;
  /** Wall clock, ms since the epoch. */
  readonly now: () => number;
  readonly hold: ReplyHold;
}

export interface CommandSpec {
  /** Lower case, as COMMAND lists it. */
  readonly name: string;
  /** Redis' convention: N exactly N arguments (the name counts), -N at least N. */
  readonly arity: number;
  readonly flags: readonly string[];
  readonly firstKey: number;
  readonly lastKey: number;
  readonly step: number;
  readonly group: string;
  readonly summary: string;
  /** Runs before AUTH when tokens are configured (AUTH, HELLO, QUIT). */
  readonly noAuth?: boolean;
  /** Most arguments accepted (AUTH takes 1 or 2), checked with the arity. */
  readonly maxArgs?: number;
  /** Subcommands, for COMMAND and the arity check of `CLIENT x`. */
  readonly subcommands?: readonly string[];
  run(ctx: CommandContext, args: readonly Buffer[]): Reply | Promise<Reply>;
}

export const text = (arg: Buffer): string => arg.toString('utf8');
export const upper = (arg: Buffer): string => arg.toString('latin1').toUpperCase();
