import { describe, expect, it } from 'vitest';

import {
  applyExecution,
  attributionOf,
  CELL_RUN_CLASS,
  describeAttribution,
  renderCellRun,
  runningLabel
} from '../src/execution';
import { IExecutionMessage, parseServiceMessage, RAW_EXECUTION } from '../src/protocol';

function raw(payload: object): Uint8Array {
  const json = new TextEncoder().encode(JSON.stringify(payload));
  return new Uint8Array([2, json.length & 0x7f | (json.length > 127 ? 0x80 : 0), ...(json.length > 127 ? [json.length >> 7] : []), ...json]);
}

describe('attribution', () => {
  it('reads who ran a cell from the metadata the service writes', () => {
    const run = attributionOf({ cs3collab: { execution: { by: 'Marie Curie', site: 'cesnet.test', at: '2026-12-04T14:05:00+00:00' } } });
    expect(run).toEqual({ by: 'Marie Curie', site: 'cesnet.test', at: '2026-12-04T14:05:00+00:00' });
    expect(describeAttribution(run!, new Date('2026-12-04T18:00:00Z'))).toBe('Run by Marie Curie (cesnet.test) at 14:05 UTC');
    expect(describeAttribution(run!, new Date('2026-12-05T01:00:00Z'))).toBe('Run by Marie Curie (cesnet.test) at 2026-12-04 14:05 UTC');
  });

  it('shows nothing for cells never run in a shared kernel or with a malformed record', () => {
    expect(attributionOf({})).toBeNull();
    expect(attributionOf({ cs3collab: { execution: { by: 42 } } })).toBeNull();
    expect(attributionOf(undefined)).toBeNull();
  });

  it('renders one line per cell, updated in place and removed', () => {
    const children: HTMLElement[] = [];
    const cell = { children, append: (el: HTMLElement) => children.push(el) } as unknown as HTMLElement;
    const doc = {
      createElement: () => {
        const el: any = { className: '', textContent: '', title: '', remove: () => children.splice(children.indexOf(el), 1) };
        return el;
      }
    };
    renderCellRun(cell, { by: 'Albert Einstein', site: 'cernbox.test', at: '' }, doc);
    expect(children).toHaveLength(1);
    expect(children[0].className).toBe(CELL_RUN_CLASS);
    expect(children[0].textContent).toBe('Run by Albert Einstein (cernbox.test)');
    renderCellRun(cell, { by: 'Marie Curie', site: 'cesnet.test', at: '' }, doc);
    expect(children).toHaveLength(1);
    expect(children[0].textContent).toBe('Run by Marie Curie (cesnet.test)');
    renderCellRun(cell, null, doc);
    expect(children).toHaveLength(0);
  });
});

describe('who is running what', () => {
  it('parses the service messages and names the people running cells', () => {
    const start = parseServiceMessage(raw({ type: RAW_EXECUTION, state: 'running', cellId: 'c1', by: 'Marie Curie', site: 'cesnet.test', at: 'now' })) as IExecutionMessage;
    expect(start.type).toBe(RAW_EXECUTION);
    const running = new Map<string, IExecutionMessage>();
    applyExecution(running, start);
    expect(runningLabel(running)).toBe('▶ Marie Curie is running a cell');
    applyExecution(running, { ...start, cellId: 'c2', by: 'Albert Einstein' });
    expect(runningLabel(running)).toBe('▶ Marie Curie, Albert Einstein are running 2 cells');
    applyExecution(running, { ...start, state: 'done' });
    applyExecution(running, { ...start, cellId: 'c2', state: 'done' });
    expect(runningLabel(running)).toBe('');
    expect(parseServiceMessage(raw({ type: RAW_EXECUTION, state: 'weird', cellId: 'c1' }))).toBeNull();
    expect(parseServiceMessage(raw({ type: 'cs3collab:kernel', event: 'died', message: 'The shared kernel stopped' })))
      .toEqual({ type: 'cs3collab:kernel', event: 'died', message: 'The shared kernel stopped' });
  });
});
