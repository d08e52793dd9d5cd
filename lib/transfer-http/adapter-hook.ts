import axios, { type AxiosAdapter, type AxiosInstance, type InternalAxiosRequestConfig } from 'axios';

type AdapterSetting = InternalAxiosRequestConfig['adapter'];

/** A function that makes an adapter out of the one it goes in front of. */
export type AdapterWrapper = (next: AxiosAdapter) => AxiosAdapter;

/**
 * @internal Puts `wrap` in front of the adapter that sends each of the instance's requests, and returns
 * a function that takes it out again.
 *
 * The adapter runs after every request interceptor, on the config they made, whatever their number,
 * order or way of working (one that returns a copy of the config included): what the wrapper decides
 * there holds for the request that is really sent. It is put in place by a synchronous request
 * interceptor (which keeps axios on its synchronous path) around whatever adapter the config names
 * then: the instance's, a per-request one, or a test double assigned to `instance.defaults.adapter`
 * at any time. The instance's defaults are left alone, so instances made from them are not affected.
 * An interceptor that runs after this one and puts another adapter in the config skips the wrapper:
 * nothing is then added to the request at all.
 */
export function hookAdapter(instance: AxiosInstance, wrap: AdapterWrapper): () => void {
  const id = instance.interceptors.request.use(
    (config) => {
      const inner = config.adapter;
      config.adapter = wrap((sent) => resolveAdapter(inner, sent)(sent));
      return config;
    },
    undefined,
    { synchronous: true },
  );
  return () => instance.interceptors.request.eject(id);
}

/** The adapter function a setting names, resolved as axios' own dispatch does (`['xhr', 'http', 'fetch']`). */
function resolveAdapter(setting: AdapterSetting, config: InternalAxiosRequestConfig): AxiosAdapter {
  return typeof setting === 'function' ? setting : axios.getAdapter(setting ?? axios.defaults.adapter, config);
}
