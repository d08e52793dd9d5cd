export { FakeTransferServer } from './fake-transfer-server';
export type {
  FakeCallCounters,
  FakeEndpoint,
  FakeFault,
  FakeFaultPolicy,
  FakeRequestRecord,
  FakeTransferServerOptions,
} from './fake-transfer-server.types';
