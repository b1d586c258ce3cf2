/**
 * Which file a command such as "Share…" or "File info" acts on when it is
 * called without a `path`: the panel row or file browser item its context
 * menu was opened on (in whichever file browser: the stock one or the CS3
 * panel's "My files"), else the current document, else the selection of the
 * current file browser.
 */

import { JupyterFrontEnd } from '@jupyterlab/application';
import { IFileBrowserFactory } from '@jupyterlab/filebrowser';

/** Rows of the CS3 panel's lists carry their contents path in `data-path`. */
export const ROW_WITH_PATH = '.cs3collab-Row[data-path]';

function selectionOf(app: JupyterFrontEnd, browser: { selectedItems(): Iterator<{ path: string }> } | null | undefined) {
  const selected = browser?.selectedItems().next();
  return selected && !selected.done && selected.value ? app.serviceManager.contents.localPath(selected.value.path) : null;
}

export function targetPath(app: JupyterFrontEnd, factory: IFileBrowserFactory): string | null {
  const row = app.contextMenuHitTest(node => node.matches?.(ROW_WITH_PATH) ?? false);
  if (row?.dataset.path !== undefined) {
    return row.dataset.path;
  }
  const item = app.contextMenuHitTest(node => node.classList?.contains('jp-DirListing-item') ?? false);
  if (item) {
    // right-clicking an item selects it in the file browser that holds it
    let holder = factory.tracker.currentWidget;
    factory.tracker.forEach(candidate => {
      if (candidate.node.contains(item)) {
        holder = candidate;
      }
    });
    return selectionOf(app, holder);
  }
  const context = (app.shell.currentWidget as any)?.context;
  if (context && typeof context.path === 'string') {
    return typeof context.localPath === 'string' ? context.localPath : app.serviceManager.contents.localPath(context.path);
  }
  return selectionOf(app, factory.tracker.currentWidget);
}
