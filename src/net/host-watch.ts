/**
 * What each host (origin) has done lately: whether it ever answered, and the timeouts since its last answer. The HTTP
 * layer uses it for two decisions a single request cannot make alone: a refused connection is worth retrying only
 * from a host that answered before (a registry restarting, not a wrong address), and a host that lets requests time
 * out again and again with no answer in between is given up on, so a run against a registry that accepts connections
 * and then says nothing ends in bounded time instead of waiting out every retry of every request.
 */

/** SilenceVerdict is what {@link HostWatch.timedOut} concludes. */
export interface SilenceVerdict {
  /** True when the host is to be given up on. */
  down: boolean;
  /** Timeouts in a row since the host last answered. */
  timeouts: number;
  /** About how long the host has not answered, in ms (from the start of the first of those timeouts). */
  silentMs: number;
}

/** HostWatch keeps the recent history of one host. */
export class HostWatch {
  private answeredOnce = false;
  private timeouts = 0;
  /** When the first timeout since the last answer began (fired minus its length). */
  private silentSince = 0;
  private firstFiredAt = 0;

  /** everAnswered tells whether the host has answered any request in this process. */
  get everAnswered(): boolean {
    return this.answeredOnce;
  }

  /** answered records a complete answer (headers of a response without a body, or a body read to its end). */
  answered(): void {
    this.answeredOnce = true;
    this.timeouts = 0;
  }

  /**
   * timedOut records a request to the host that timed out after `timeoutMs`. The host is down once requests have
   * kept timing out, with no answer between them, for longer than that timeout: at least two rounds of timeouts, so
   * one slow request (or a burst of parallel ones timing out together) is retried, and a silent host is not.
   */
  timedOut(timeoutMs: number, now: number = Date.now()): SilenceVerdict {
    if (this.timeouts === 0) {
      this.firstFiredAt = now;
      this.silentSince = now - timeoutMs;
    }
    this.timeouts++;
    const down = this.timeouts >= 2 && now - this.firstFiredAt >= timeoutMs;
    return { down, timeouts: this.timeouts, silentMs: now - this.silentSince };
  }
}

const watches = new Map<string, HostWatch>();

/** MAX_WATCHED_HOSTS bounds the hosts remembered (a long-lived process talking to many hosts). */
export const MAX_WATCHED_HOSTS = 1024;

/** hostWatch gives the watch of an origin (`http://host:port`), making it on first use. */
export function hostWatch(origin: string): HostWatch {
  let w = watches.get(origin);
  if (w === undefined) {
    if (watches.size >= MAX_WATCHED_HOSTS) {
      const oldest = watches.keys().next();
      if (oldest.done !== true) watches.delete(oldest.value);
    }
    w = new HostWatch();
    watches.set(origin, w);
  }
  return w;
}

/** forgetHosts drops every host's history (with the connection pools, in `closeAll`). */
export function forgetHosts(): void {
  watches.clear();
}
