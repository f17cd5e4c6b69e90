from django.http import HttpResponse, JsonResponse


def index(request):
    return HttpResponse("Hello from Django!", content_type="text/plain")


def info(request):
    return JsonResponse({"method": request.method, "path": request.path,
                         "query": request.GET.dict()})


async def async_info(request):
    """An async view: served natively by an ASGI worker (cunicorn -k asgi djangoapp.asgi)."""
    import asyncio

    await asyncio.sleep(0)
    return JsonResponse({"async": True, "method": request.method, "path": request.path,
                         "query": request.GET.dict(), "body": request.body.decode()})
