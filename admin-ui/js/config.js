// Settings of the dashboard and its one mutable state object.

export const POLL_MS = 2000;
export const REQUEST_TIMEOUT_MS = 5000;
export const GAP_PAGE_SIZE = 50;
export const MAX_GAP_PAGES = 20;          // at most 1,000 gaps kept refreshed
export const FINISHED_BACKFILLS_SHOWN = 15;
export const HEAD_STALE_SECONDS = 120;
export const WINDOW_GAPS_LIMIT = 1000;   // gaps read for the zoomed gap map's window
export const CONFIRM_MS = 6000;
export const WHOAMI_RECHECK_MS = 30000;  // how often an API without /v1/whoami is asked again          // how long a "confirm cancel" stays armed

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
  whoami: null,            // GET /v1/whoami (or the assumed loopback admin when it 404s)
  whoamiErr: null,
  whoamiAt: 0,             // when /v1/whoami was last asked
  needKey: false,          // a request answered 401: ask for a key
  keyPromptDismissed: false,
  confirm: null,           // {id, action, until}: a control waiting for its second click
  controlBusy: {},         // backfill id -> action in flight
  controlMsg: {},          // backfill id -> {kind, text}: the last control's outcome
  detail: null,            // {id, view, progress, err}: the backfill open in the detail panel
  zoom: {},                // chain -> {from, to}: the gap map's window (absent: whole range)
  windowGaps: {},          // chain -> {key, items, more}: gaps of that window
  windowGapsErr: {},
  gapPick: null,           // {chain, start, end, clipped}: the gap clicked on the map
  gapBusy: false,          // "Backfill this gap" in flight
  gapResult: null,         // {kind, text}: outcome of "Backfill this gap"
  lastOk: null,            // Date of the last fully successful poll
  apiError: null,          // {title, msg} when the API could not be read
  failingSince: null,
  health: null,            // {ok: bool, text}
  showAllBackfills: false,
  polling: false,
  pollAgain: false,
  timer: null,
};
