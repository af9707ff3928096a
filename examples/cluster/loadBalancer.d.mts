/** Types of loadBalancer.mjs (plain JavaScript, so the start script runs with `node` alone). */
export interface Backend {
  host: string;
  port: number;
}

export interface LoadBalancer {
  port: number;
  url: string;
  /** Replaces the nodes new connections go to (open connections stay where they are). */
  setBackends(list: Backend[]): void;
  close(): Promise<void>;
}

export function startLoadBalancer(options: { port: number; host?: string; backends: Backend[] }): Promise<LoadBalancer>;
