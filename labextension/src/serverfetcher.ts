/** The app's Fetcher: requests to the Jupyter server with its settings (token, XSRF, base URL). */

import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { Fetcher } from './rest';

export function serverFetcher(settings: ServerConnection.ISettings): Fetcher {
  return (path, init) =>
    ServerConnection.makeRequest(URLExt.join(settings.baseUrl, path), { method: 'GET', ...init }, settings);
}
