// Settings of the dashboard and its one mutable state object.

export const POLL_MS = 2000;
export const REQUEST_TIMEOUT_MS = 5000;
export const GAP_PAGE_SIZE = 50;
export const MAX_GAP_PAGES = 20;          // at most 1,000 gaps kept refreshed
export const FINISHED_BACKFILLS_SHOWN = 15;
export const HEAD_STALE_SECONDS = 120;

// ---------------------------------------------------------------- state

export const state = {
  chains: null,            // last good GET /v1/chains
  status: {},              // chain -> last good status
  statusErr: {},           // chain -> error text of the last failed poll
  backfills: {},           // chain -> last good backfill list
  backfillsErr: {},
  gaps: {},                // chain -> {items, nextAfter}
  gapsErr: {},
  gapPages: {},            // chain -> pages of gaps the operator asked for
  endpoints: {},           // chain -> last good GET /v1/chains/{name}/endpoints
  endpointsErr: {},
  reportersOpen: {},       // "chain endpoint#" -> per-process list left open
  fleet: {},               // chain -> last good GET /v1/chains/{name}/fleet
  fleetErr: {},
  workers: null,           // last good GET /v1/workers (every chain's)
  workersErr: null,
  fleetEdit: null,         // {chain, dirty} while the operator edits the bounds
  fleetShown: null,        // chain whose bounds the form shows
  selected: null,
  lastOk: null,            // Date of the last fully successful poll
  apiError: null,          // {title, msg} when the API could not be read
  failingSince: null,
  health: null,            // {ok: bool, text}
  showAllBackfills: false,
  polling: false,
  pollAgain: false,
  timer: null,
};
