/** The console's own CSS, on top of Pico CSS: status colours, counts, the timeline chart. */
export const CONSOLE_CSS = `
:root { --pico-font-size: 15px; }
.bar { display: flex; justify-content: space-between; align-items: center; padding-top: .75rem; padding-bottom: .25rem; border-bottom: 1px solid var(--pico-muted-border-color); }
.brand { text-decoration: none; }
.who form.inline { display: inline; margin: 0; }
.who button.small { padding: .15rem .5rem; font-size: .8rem; margin: 0 0 0 .5rem; width: auto; }
.narrow { max-width: 28rem; }
.filters { display: grid; grid-template-columns: repeat(6, auto); gap: .5rem; align-items: end; }
.filters label { min-width: 0; }
.filters input, .filters select { width: 100%; min-width: 0; }
.filters label { margin: 0; font-size: .85rem; }
.filters input, .filters select, .filters button { margin: 0; }
.counts { display: flex; flex-wrap: wrap; gap: .5rem; margin: 1rem 0; }
.count { padding: .35rem .7rem; border-radius: .4rem; background: var(--pico-card-background-color); border: 1px solid var(--pico-muted-border-color); text-decoration: none; font-size: .9rem; }
.badge { display: inline-block; padding: .05rem .5rem; border-radius: 1rem; font-size: .78rem; font-weight: 600; color: #fff; vertical-align: middle; white-space: nowrap; }
.s-working { background: #1d6fb8; } .count.s-working { background: #e8f1fb; color: #1d6fb8; }
.s-input_required { background: #b86e00; } .count.s-input_required { background: #fff4e0; color: #8a5200; }
.s-completed { background: #2b8a3e; } .count.s-completed { background: #e6f4ea; color: #2b8a3e; }
.s-stalled { background: #b35c00; }
.s-failed { background: #c92a2a; } .count.s-failed { background: #fdeaea; color: #c92a2a; }
.s-cancelled { background: #6c757d; } .count.s-cancelled { background: #f1f3f5; color: #495057; }
.count.oldest { background: transparent; }
table.tasks td { vertical-align: top; font-size: .9rem; }
table.tasks td:nth-child(n+3) { white-space: nowrap; }
table.tasks tbody tr { position: relative; }
table.tasks a.row-link { text-decoration: none; }
table.tasks a.row-link::after { content: ''; position: absolute; inset: 0; }
table.tasks tbody tr:hover > td { background: #eef4fb; }
table.tasks tbody tr:focus-within { outline: 2px solid var(--pico-primary); outline-offset: -2px; }
table.tasks a.row-link:focus-visible { outline: none; box-shadow: none; }
td.empty { text-align: center; color: var(--pico-muted-color); }
.pages { display: flex; gap: 1rem; justify-content: flex-end; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
.facts dt { font-weight: 600; } .facts dd { margin: 0; }
.facts progress { display: inline-block; width: 14rem; max-width: 60%; margin: 0 .5rem 0 0; vertical-align: middle; }
.error { color: #c92a2a; }
.req { color: #c92a2a; }
.question { border-left: 4px solid #b86e00; }
.refusal { border-left: 4px solid #c92a2a; }
.answer .actions, .confirm .actions { display: flex; gap: .5rem; align-items: center; }
.answer .actions button, .confirm .actions button { width: auto; margin: 0; }
pre.json { max-height: 24rem; overflow: auto; font-size: .8rem; }
.timeline { list-style: none; padding: 0; margin: 0 0 1.5rem; }
.timeline li { display: grid; grid-template-columns: 11rem minmax(14rem, 2fr) 3fr 4rem; gap: .75rem; align-items: center; padding: .3rem 0; border-bottom: 1px dashed var(--pico-muted-border-color); list-style: none; }
.timeline .when { font-size: .78rem; color: var(--pico-muted-color); font-variant-numeric: tabular-nums; }
.timeline .what { font-size: .88rem; line-height: 1.25; overflow-wrap: anywhere; }
.timeline .detail { color: var(--pico-muted-color); }
.timeline .due { color: #8a5200; font-weight: 600; }
.timeline .by { color: #5f3dc4; }
.timeline .track { position: relative; height: .8rem; background: #f1f3f5; border-radius: .4rem; }
.timeline .gap { position: absolute; top: -.2rem; bottom: -.2rem; background: repeating-linear-gradient(90deg, transparent, transparent 3px, #dee2e6 3px, #dee2e6 4px); opacity: .8; }
.timeline li.axis { border-bottom: 1px solid var(--pico-muted-border-color); padding-bottom: .1rem; }
.timeline li.axis .track { background: transparent; height: 1.1rem; font-size: .72rem; color: var(--pico-muted-color); }
.timeline li.axis .gap { top: 0; bottom: 0; }
.timeline .gap-label { position: absolute; top: 0; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; text-align: center; font-weight: 600; color: #495057; background: rgba(255, 255, 255, .85); }
.timeline .tick { position: absolute; top: 0; white-space: nowrap; } .timeline .tick.start { left: 0; } .timeline .tick.end { right: 0; }
.timeline .bar.beyond { border-top-right-radius: 0; border-bottom-right-radius: 0; }
.timeline .beyond-label { position: absolute; right: 0; top: -.15rem; transform: translateX(calc(100% + .3rem)); font-size: .72rem; font-weight: 600; color: #8a5200; white-space: nowrap; }
.timeline .bar { position: absolute; top: 0; bottom: 0; border-radius: .4rem; background: #adb5bd; }
.st-done .bar { background: #2b8a3e; } .st-failed .bar { background: #c92a2a; }
.st-waiting .bar { background: repeating-linear-gradient(45deg, #f59f00, #f59f00 6px, #ffd8a8 6px, #ffd8a8 12px); }
.t-run .bar, .t-created .bar, .t-cancelled .bar, .t-completion .bar { background: #5f3dc4; }
details.danger summary { width: auto; display: inline-block; }
.connection { position: sticky; top: 0; z-index: 10; margin: 0; padding: .5rem 1rem; background: #fff4e0; color: #8a5200; border-bottom: 1px solid #f59f00; text-align: center; }
.count-label { align-self: center; font-size: .85rem; color: var(--pico-muted-color); }
.scroll { overflow-x: auto; }
@media (max-width: 720px) {
  .bar { flex-wrap: wrap; gap: .25rem; }
  .filters { grid-template-columns: repeat(2, minmax(0, 1fr)); }
  .filters button { grid-column: 1 / -1; }
  table.tasks th:nth-child(4), table.tasks td:nth-child(4), table.tasks th:nth-child(5), table.tasks td:nth-child(5) { display: none; }
  .timeline li { grid-template-columns: 1fr 4rem; gap: .2rem; }
  .timeline li > .when, .timeline li > .what { grid-column: 1 / -1; }
  .facts { grid-template-columns: 1fr; }
  .facts dd { margin-bottom: .4rem; }
}
`;
