/**
 * A revoked share, in words: one dialog ("Albert Einstein removed your access
 * to analysis.ipynb") with "Save a copy to my files", instead of the stock
 * frontend's "Session expired" dialog with the service's raw reason.
 *
 * The service closes a revoked participant's socket with 1003 and the JSON
 * reason `access_revoked` (access.py). The stock provider
 * (@jupyter/docprovider 5) answers every 1003 with its own dialog and
 * disposes the shared model. For this one reason only, the handler below
 * takes its place on the y-websocket provider: it stops y-websocket's
 * reconnecting (the share is gone; `disconnect()`), keeps the document on
 * screen (the tab turns read-only through readonly.ts) and shows our dialog.
 * Every other close still goes to the stock handler. The stock handler is the
 * provider's `_onConnectionClosed`, not a public API: it is feature-tested,
 * and without it the stock dialog shows as before.
 */

import { JupyterFrontEnd } from '@jupyterlab/application';
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { NotebookPanel } from '@jupyterlab/notebook';
import { Widget } from '@lumino/widgets';

import { BrowseClient } from './browsemodel';
import { closeReasonOf, REVOKED_REASON } from './protocol';
import { copyName, revokedSentence } from './readonlystate';
import { IYWebsocket } from './room';

const TAKEN_OVER = new WeakSet<object>();

/**
 * Route `access_revoked` closes of `yws` to `onRevoked` instead of the stock
 * provider's dialog; other closes go to the stock handler as before. Cheap
 * and idempotent: called on every rebind.
 */
export function takeOverRevocation(documentProvider: any, yws: IYWebsocket | null, onRevoked: () => void): boolean {
  const stock = documentProvider?._onConnectionClosed;
  if (!yws || typeof stock !== 'function' || typeof (yws as any).disconnect !== 'function') {
    return false;
  }
  if (TAKEN_OVER.has(yws)) {
    return true;
  }
  TAKEN_OVER.add(yws);
  yws.off('connection-close', stock);
  yws.on('connection-close', (event: CloseEvent | null, ...rest: unknown[]) => {
    if (event && closeReasonOf(event.code, event.reason) === REVOKED_REASON) {
      (yws as any).disconnect(); // no reconnecting to a share that is gone
      onRevoked();
      return;
    }
    return stock(event, ...rest);
  });
  return true;
}

/** Who owns a panel's file, learnt (File info) while the tab still has access. */
export class OwnerName {
  constructor(browse: BrowseClient, panel: NotebookPanel, onMine: (mine: boolean) => void) {
    void panel.context.ready
      .then(() => browse.info(panel.context.localPath))
      .then(info => {
        this.name = info.owner?.displayName || null;
        onMine(info.permissions?.role === 'owner');
      })
      .catch(() => undefined); // the dialog then says "The owner"
  }

  name: string | null = null;
}

/** The revocation dialog of `panel`, once; "Save a copy to my files" saves what the tab shows. */
export async function showRevoked(app: JupyterFrontEnd, panel: NotebookPanel, owner: string | null): Promise<void> {
  const fileName = panel.context.localPath.split('/').pop() || panel.context.localPath;
  const body = document.createElement('div');
  body.className = 'cs3collab-Revoked';
  const sentence = document.createElement('p');
  sentence.className = 'cs3collab-RevokedSentence';
  sentence.textContent = `${revokedSentence(owner, fileName)}.`;
  const rest = document.createElement('p');
  rest.textContent = 'The notebook stays open here, read-only. You can keep a copy of it in your own files.';
  body.append(sentence, rest);
  const result = await showDialog({
    title: 'Access removed',
    body: new Widget({ node: body }),
    buttons: [Dialog.cancelButton({ label: 'Close' }), Dialog.okButton({ label: 'Save a copy to my files' })]
  });
  if (result.button.accept) {
    await saveCopy(app, panel, fileName);
  }
}

/** Save what `panel` shows as a new notebook in the user's own files (the contents root). */
export async function saveCopy(app: JupyterFrontEnd, panel: NotebookPanel, fileName: string): Promise<string | null> {
  const contents = app.serviceManager.contents;
  try {
    const name = await copyName(fileName, async candidate => {
      try {
        await contents.get(candidate, { content: false });
        return true;
      } catch {
        return false;
      }
    });
    await contents.save(name, { type: 'notebook', format: 'json', content: panel.context.model.toJSON() });
    Notification.success(`Saved a copy as "${name}" in My files`, { autoClose: 8000 });
    return name;
  } catch (error) {
    Notification.error(`The copy could not be saved: ${(error as Error).message}`);
    return null;
  }
}
