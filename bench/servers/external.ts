import { ourListPath, waitForHttp, type Service, type TargetName } from './service.js';

export interface ExternalOptions {
  name: TargetName;
  baseUrl: string;
  databaseUrl?: string;
  rootPid?: number;
}

/** A server someone else started (--url, --peer-url): measured as it is, never stopped by the bench. */
export async function useExternal(options: ExternalOptions): Promise<Service> {
  const listPath = options.name === 'ours' ? ourListPath : () => '/items';
  await waitForHttp(`${options.baseUrl}${listPath(1)}`, 10_000);
  return {
    name: options.name,
    label: options.name === 'ours' ? 'fastify-sqlasync' : options.name === 'minimal' ? 'minimal peer' : 'FastAPI seed',
    baseUrl: options.baseUrl,
    ...(options.databaseUrl === undefined ? {} : { databaseUrl: options.databaseUrl }),
    ...(options.rootPid === undefined ? {} : { rootPid: options.rootPid }),
    listPath,
    description: { command: [], logging: 'unknown (started outside the bench)', environment: {}, external: true },
    stop: async () => {},
  };
}
